/**
 * Who is calling. Static bearer tokens produce `token` principals in this slice; JWT/OIDC and
 * mTLS (SPIFFE) authenticators will produce `jwt` and `mtls` principals through the same
 * Authenticator seam, and policy (Cedar) will see only the Principal.
 */
import type { FastifyRequest } from "fastify";

export type PrincipalKind = "token" | "jwt" | "mtls";

/** Scopes a static token may carry; JWT/mTLS principals will map claims to the same roles. */
export const SCOPES = ["admin", "wrap", "unwrap", "rewrap", "audit"] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  readonly id: string;
  readonly kind: PrincipalKind;
  readonly roles: readonly string[];
}

/** The outcome of one authenticator: a principal, "not for me" (null), or a denial reason. */
export type AuthResult = Principal | null | { readonly denied: string; readonly subject: string };

export interface Authenticator {
  authenticate(req: FastifyRequest): Promise<AuthResult>;
}

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
    /** Who a denied request claimed to be (an HMAC fingerprint for unknown tokens). */
    subject: string | null;
    /** Set once the request has its audit entry, so it is never written twice. */
    audited: boolean;
  }
  interface FastifyContextConfig {
    /** Audit action name, e.g. "datakeys.unwrap". */
    action?: string;
    /** The role a principal needs for this route. */
    scope?: Scope;
  }
}
