/**
 * Console sign-in with OIDC: authorization code + PKCE (S256), with state and nonce. The
 * browser is sent to the issuer; on return the server exchanges the code for an ID token and
 * opens a session whose credential is that ID token, so the service's own JWT authenticator
 * (serve --oidc-issuer/--oidc-audience = this client id) decides who it is on every request,
 * and the session ends when the token expires. The state is bound to the browser by a
 * short-lived cookie (login CSRF).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { decodeJwt } from "jose";
import { deny } from "../errors.js";

export interface ConsoleOidcOptions {
  /** The issuer (its /.well-known/openid-configuration is read at the first sign-in). */
  readonly issuer: string;
  readonly clientId: string;
  /** Confidential client (client_secret_basic); absent: a public client (PKCE only). */
  readonly clientSecret?: string;
}

interface Pending {
  readonly verifier: string;
  readonly nonce: string;
  readonly redirectUri: string;
  readonly at: number;
}

interface Endpoints {
  readonly authorization_endpoint: string;
  readonly token_endpoint: string;
}

const PENDING_MS = 10 * 60_000;
const b64url = (b: Buffer) => b.toString("base64url");

/** https, or http to a loopback host (tests, local issuers). */
function checkedUrl(u: string): URL {
  const url = new URL(u);
  const loopback = ["127.0.0.1", "[::1]", "localhost"].includes(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback))
    throw new Error(`OIDC endpoint ${url.origin} must be https (http only on loopback)`);
  return url;
}

export class OidcSignIn {
  private readonly pending = new Map<string, Pending>();
  private endpoints: Endpoints | null = null;

  constructor(
    readonly o: ConsoleOidcOptions,
    private readonly stateCookie: string,
    private readonly secure: boolean,
  ) {}

  private async discover(): Promise<Endpoints> {
    if (this.endpoints) return this.endpoints;
    const url = new URL(".well-known/openid-configuration", `${this.o.issuer.replace(/\/$/, "")}/`);
    const r = await fetch(checkedUrl(url.href), { signal: AbortSignal.timeout(10_000) });
    if (!r.ok) throw new Error(`OIDC discovery answered ${r.status}`);
    const d = (await r.json()) as Partial<Endpoints>;
    if (!d.authorization_endpoint || !d.token_endpoint)
      throw new Error("OIDC discovery incomplete");
    checkedUrl(d.authorization_endpoint);
    checkedUrl(d.token_endpoint);
    this.endpoints = d as Endpoints;
    return this.endpoints;
  }

  /** Starts a sign-in: a redirect to the issuer's authorization endpoint. */
  async start(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const e = await this.discover();
    const t = Date.now();
    for (const [k, p] of this.pending) if (t - p.at > PENDING_MS) this.pending.delete(k);
    if (this.pending.size > 10_000) this.pending.clear();
    const state = b64url(randomBytes(32));
    const verifier = b64url(randomBytes(32));
    const nonce = b64url(randomBytes(16));
    const redirectUri = `${req.protocol}://${req.host}/console/oidc/callback`;
    this.pending.set(state, { verifier, nonce, redirectUri, at: t });
    const u = new URL(e.authorization_endpoint);
    u.search = new URLSearchParams({
      response_type: "code",
      client_id: this.o.clientId,
      redirect_uri: redirectUri,
      scope: "openid",
      state,
      nonce,
      code_challenge: b64url(createHash("sha256").update(verifier).digest()),
      code_challenge_method: "S256",
    }).toString();
    reply.setCookie(this.stateCookie, state, {
      path: "/console/oidc/",
      httpOnly: true,
      // Lax: the issuer's redirect back is a cross-site top-level navigation.
      sameSite: "lax",
      secure: this.secure,
      maxAge: PENDING_MS / 1000,
    });
    return reply.redirect(u.href, 302);
  }

  /** Completes a sign-in: the ID token for `code`, checked against the pending state. */
  async finish(
    req: FastifyRequest<{ Querystring: { code?: string; state?: string } }>,
    reply: FastifyReply,
  ): Promise<string> {
    const { code, state } = req.query;
    const bound = req.cookies[this.stateCookie];
    reply.clearCookie(this.stateCookie, { path: "/console/oidc/" });
    if (!code || !state || !bound || !same(state, bound)) deny(401, "OIDC sign-in: state mismatch");
    const p = this.pending.get(state);
    this.pending.delete(state);
    if (!p || Date.now() - p.at > PENDING_MS) deny(401, "OIDC sign-in: unknown or expired state");
    const e = await this.discover();
    const body = new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: p.redirectUri,
      code_verifier: p.verifier,
      client_id: this.o.clientId,
    });
    const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
    if (this.o.clientSecret !== undefined)
      headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(this.o.clientId)}:${encodeURIComponent(this.o.clientSecret)}`).toString("base64")}`;
    const r = await fetch(e.token_endpoint, {
      method: "POST",
      headers,
      body,
      signal: AbortSignal.timeout(10_000),
    });
    if (!r.ok) deny(401, `OIDC sign-in: the token endpoint answered ${r.status}`);
    const idToken = ((await r.json()) as { id_token?: unknown }).id_token;
    if (typeof idToken !== "string") deny(401, "OIDC sign-in: no ID token");
    // The signature, iss, aud and exp are the JWT authenticator's to check; the nonce is ours.
    let nonce: unknown;
    try {
      nonce = decodeJwt(idToken).nonce;
    } catch {
      deny(401, "OIDC sign-in: malformed ID token");
    }
    if (typeof nonce !== "string" || !same(nonce, p.nonce))
      deny(401, "OIDC sign-in: nonce mismatch");
    return idToken;
  }
}

function same(a: string, b: string): boolean {
  const x = createHash("sha256").update(a).digest();
  const y = createHash("sha256").update(b).digest();
  return timingSafeEqual(x, y);
}
