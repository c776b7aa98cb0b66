/**
 * Who is calling. Static bearer tokens produce `token` principals, OIDC/JWT `jwt` and mTLS
 * client certificates (SPIFFE IDs, auth/mtls.ts) `mtls`, all through the same Authenticator
 * seam; policy (Cedar) sees only the Principal (and `context.clientCert`).
 */
import type { FastifyRequest } from "fastify";

export type PrincipalKind = "token" | "jwt" | "mtls";

/**
 * The longest principal id an authenticator produces: a SPIFFE ID (auth/spiffe.ts, 2048 bytes
 * of ASCII); `jwt:` + a `sub` of at most 512; `token:` + 16 hex. Every route taking a principal
 * id (a path parameter) admits this much.
 */
export const PRINCIPAL_ID_MAX_LENGTH = 2048;

/** Scopes a static token may carry; JWT/mTLS principals will map claims to the same roles. */
export const SCOPES = ["admin", "wrap", "unwrap", "rewrap", "audit", "reader"] as const;
export type Scope = (typeof SCOPES)[number];

/** Workload identity the policy sees in `context.workload` (docs/SERVICE.md, "Identity mapping"). */
export interface WorkloadIdentity {
  readonly kind: string;
  readonly id: string;
  readonly k8sNamespace?: string;
  readonly serviceAccount?: string;
  readonly repository?: string;
  readonly ref?: string;
  readonly spiffeId?: string;
}

export interface Principal {
  readonly id: string;
  readonly kind: PrincipalKind;
  readonly roles: readonly string[];
  /** Cedar principal type; default Workload. */
  readonly type?: "Workload" | "User";
  /** Default: {kind: the principal kind, id: the principal id}. */
  readonly workload?: WorkloadIdentity;
}

/** A verified client certificate, as Cedar sees it in `context.clientCert`. */
export interface ClientCertInfo {
  readonly subject: string;
  /** SHA-256 of the DER, lowercase hex. */
  readonly fingerprint: string;
  readonly spiffeId?: string;
}

/** The outcome of one authenticator: a principal, "not for me" (null), or a denial reason. */
export type AuthResult = Principal | null | { readonly denied: string; readonly subject: string };

export interface Authenticator {
  authenticate(req: FastifyRequest): Promise<AuthResult>;
}

/** A label map of the API (`{"team": "a"}`). */
type LabelMap = Readonly<Record<string, string>>;

export interface KeyResource {
  readonly key: string;
  readonly attrs?: { readonly labels: LabelMap; readonly sensitivity: string };
  readonly stanza?: { readonly digest: string; readonly version: number };
}

/**
 * What a route touches; authz/resolve.ts turns it into a Cedar resource with its attributes:
 * a key (stored labels and sensitivity, or `attrs` for a key being created; `stanza` names the
 * stanza being unwrapped so its registered artifact goes into `context.artifact`), an artifact
 * being registered (attributes from the request), a stored artifact by id, or the service.
 */
export type RouteResource =
  | KeyResource
  | {
      readonly artifact: {
        readonly id: string;
        readonly key: string;
        readonly version: number;
        readonly digest: string;
        readonly labels: LabelMap;
      };
    }
  | { readonly artifactId: string }
  | "service";

export interface RouteAuthz {
  readonly action: string;
  /**
   * The resources the request touches (after body validation); each must be allowed. They are
   * resolved and decided in order, so a Service check placed first runs before any lookup.
   */
  resources(req: FastifyRequest): RouteResource[];
  /** Extra Cedar context (e.g. verified attestation claims); a throw denies the request. */
  context?(req: FastifyRequest): Promise<Record<string, unknown>>;
}

/** What the authorizer decided, for the audit entry. */
export interface AuthzOutcome {
  readonly decision: "allow" | "deny";
  readonly policies: readonly string[];
}

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
    /** Who a denied request claimed to be (an HMAC fingerprint for unknown tokens). */
    subject: string | null;
    /** Set once the request has its audit entry, so it is never written twice. */
    audited: boolean;
    /** The Cedar decision, once made (written into the audit entry). */
    authz: AuthzOutcome | null;
    /** The verified client certificate (mTLS), whoever authenticated the request. */
    clientCert: ClientCertInfo | null;
    /**
     * The keys and artifacts the request's authorization decisions covered, so its audit
     * entry names them even when it was refused (audit query --key/--artifact).
     */
    touched?: {
      keys: Set<string>;
      artifacts: Set<string>;
      /** Artifacts registered with a stanza being unwrapped or rewrapped (not otherwise named). */
      stanzaArtifacts: Set<string>;
    };
  }
  interface FastifyContextConfig {
    /** Audit action name, e.g. "datakeys.unwrap". */
    action?: string;
    /** The role a principal needed in the first slice (documentation; Cedar decides now). */
    scope?: Scope;
    /** The Cedar action and how to find the request's resources: the one authorization call. */
    authz?: RouteAuthz;
  }
}
