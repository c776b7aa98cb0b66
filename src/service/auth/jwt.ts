/**
 * OIDC/JWT bearer tokens: signature against the issuer's JWKS, `iss`, `aud`, `exp` (required),
 * `nbf`, with a small clock tolerance; asymmetric algorithms only (alg `none` and HMAC are
 * refused). The verified claims map to a Principal:
 *
 *   id    = "jwt:" + sub
 *   roles = the `rolesClaim` claim (array of strings, or one space/comma-separated string)
 *   type  = Workload for Kubernetes service-account tokens (`kubernetes.io` claim, sub
 *           "system:serviceaccount:NS:NAME") and CI tokens (GitHub Actions `repository`,
 *           GitLab `project_path`); User otherwise
 *
 * Static `tsk_` tokens are left to the static authenticator (this one returns null for them).
 */
import { createHmac } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import { JWT_ALGORITHMS, jwtFailure } from "./jwks.js";
import type { Authenticator, AuthResult, Principal, WorkloadIdentity } from "./principal.js";

export interface JwtOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly keys: JWTVerifyGetKey;
  /** Claim holding the roles; default "roles". */
  readonly rolesClaim?: string;
  /** Seconds of clock skew accepted on exp/nbf/iat; default 30. */
  readonly clockToleranceS?: number;
}

const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

function str(v: unknown): string | undefined {
  return typeof v === "string" && v.length > 0 && v.length <= 512 ? v : undefined;
}

export function rolesFrom(v: unknown): string[] {
  const list = Array.isArray(v) ? v : typeof v === "string" ? v.split(/[\s,]+/) : [];
  return [
    ...new Set(
      list.filter((x): x is string => typeof x === "string" && x.length > 0 && x.length <= 128),
    ),
  ];
}

/** The workload identity a token's claims describe, or null for a human user. */
export function workloadOf(c: JWTPayload): WorkloadIdentity | null {
  const sub = String(c.sub);
  const k8s = c["kubernetes.io"] as
    | { namespace?: unknown; serviceaccount?: { name?: unknown } }
    | undefined;
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(sub);
  if (k8s || m) {
    const ns = str(k8s?.namespace) ?? m?.[1];
    const sa = str(k8s?.serviceaccount?.name) ?? m?.[2];
    return {
      kind: "kubernetes",
      id: sub,
      ...(ns ? { k8sNamespace: ns } : {}),
      ...(sa ? { serviceAccount: sa } : {}),
    };
  }
  const repo = str(c.repository) ?? str(c.project_path);
  if (repo) {
    const ref = str(c.ref);
    return { kind: "ci", id: sub, repository: repo, ...(ref ? { ref } : {}) };
  }
  return null;
}

export class JwtAuthenticator implements Authenticator {
  constructor(
    private readonly o: JwtOptions,
    /** HMAC key for the fingerprint of a refused token in the audit log. */
    private readonly hmacKey: Buffer,
  ) {}

  async authenticate(req: FastifyRequest): Promise<AuthResult> {
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "");
    if (!m || m[1]!.startsWith("tsk_") || !JWT_RE.test(m[1]!)) return null;
    const token = m[1]!;
    const subject = `jwt-hmac:${createHmac("sha256", this.hmacKey).update(token).digest("hex").slice(0, 16)}`;
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, this.o.keys, {
        issuer: this.o.issuer,
        audience: this.o.audience,
        algorithms: JWT_ALGORITHMS,
        clockTolerance: this.o.clockToleranceS ?? 30,
        requiredClaims: ["exp", "sub"],
      }));
    } catch (e) {
      return { denied: jwtFailure(e), subject };
    }
    const sub = str(claims.sub);
    if (!sub) return { denied: "token sub claim missing or too long", subject };
    const workload = workloadOf(claims);
    const p: Principal = {
      id: `jwt:${sub}`,
      kind: "jwt",
      roles: rolesFrom(claims[this.o.rolesClaim ?? "roles"]),
      type: workload ? "Workload" : "User",
      workload: workload ?? { kind: "user", id: sub },
    };
    return p;
  }
}
