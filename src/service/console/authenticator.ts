/**
 * The console's session cookie as one more Authenticator, tried first: a request that carries
 * an Authorization header is not the console's (null). Otherwise the session's own credential
 * is presented to the service's authenticators, exactly as if the browser had sent it, so the
 * principal, its roles and every Cedar decision are the token's. A state-changing request must
 * also carry the session's CSRF token (x-csrf-token) and come from this origin.
 */
import type { FastifyRequest } from "fastify";
import type { Authenticator, AuthResult } from "../auth/principal.js";
import { deny } from "../errors.js";
import { csrfMatches, type Session, type SessionStore } from "./sessions.js";

/** `__Host-` (Secure, Path=/, no Domain) over TLS; a plain name on loopback HTTP (tests). */
export function cookieName(tls: boolean): string {
  return tls ? "__Host-tensorseal-console" : "tensorseal-console";
}

export const CSRF_HEADER = "x-csrf-token";

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

/** The request as the inner authenticators see it: the session's credential as a bearer token. */
export function withCredential(req: FastifyRequest, credential: string): FastifyRequest {
  const headers = { ...req.headers, authorization: `Bearer ${credential}` };
  return Object.create(req, { headers: { value: headers, enumerable: true } }) as FastifyRequest;
}

/** True when the request's Origin is this server's own (scheme, host and port). */
export function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  return typeof origin === "string" && origin === `${req.protocol}://${req.host}`;
}

export class SessionAuthenticator implements Authenticator {
  constructor(
    private readonly sessions: SessionStore,
    private readonly inner: readonly Authenticator[],
    private readonly cookie: string,
  ) {}

  /** The session a request's cookie names, or null. */
  session(req: FastifyRequest): Session | null {
    const id = req.cookies?.[this.cookie];
    return id ? this.sessions.get(id) : null;
  }

  async authenticate(req: FastifyRequest): Promise<AuthResult> {
    if (req.headers.authorization !== undefined) return null;
    if (req.cookies?.[this.cookie] === undefined) return null;
    const s = this.session(req);
    if (!s) return { denied: "console session expired or signed out", subject: "anonymous" };
    if (!SAFE.has(req.method)) {
      req.subject = s.principal;
      if (!sameOrigin(req)) deny(403, "console request from another origin refused");
      if (!csrfMatches(s, header(req, CSRF_HEADER))) deny(403, "missing or wrong CSRF token");
    }
    const view = withCredential(req, s.credential);
    for (const a of this.inner) {
      const r = await a.authenticate(view);
      if (view.clientCert) req.clientCert = view.clientCert;
      if (r !== null) return r;
    }
    return { denied: "the session's credential is no longer accepted", subject: s.principal };
  }
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
