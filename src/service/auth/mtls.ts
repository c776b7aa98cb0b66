/**
 * mTLS client certificates whose SPIFFE ID (the URI SAN of an X509-SVID) is the principal.
 *
 * TLS asks for a certificate but never rejects at the handshake (`requestCert`,
 * `rejectUnauthorized: false`), so that a bad certificate gets an audited 401 here instead of
 * a silent handshake failure. Chain to `--client-ca`, validity dates, key purpose and the
 * `--client-crl` are OpenSSL's checks (`socket.authorized` / `authorizationError`); this file
 * adds the SVID rules (exactly one URI SAN, a strict SPIFFE ID, not a CA), the trust-domain
 * allow-list and revocation by fingerprint from the database.
 *
 * Precedence: this authenticator runs first. A presented certificate that fails any check
 * denies the request even when it also carries a valid bearer token (fail closed: a client
 * that shows a bad identity is not trusted on another). A valid certificate fills
 * `req.clientCert` (Cedar `context.clientCert`); with a bearer token present the token
 * authenticates (the certificate stays context), without one the SPIFFE ID does.
 */
import { createHash } from "node:crypto";
import type { TLSSocket } from "node:tls";
import type { FastifyRequest } from "fastify";
import { uriSubjectAltNames } from "../tls/der-read.js";
import { SpiffeRoles } from "./mtls-roles.js";
import type { Authenticator, AuthResult, Principal } from "./principal.js";
import type { RevokedCertRepo } from "./revoked-certs.js";
import { parseSpiffeId } from "./spiffe.js";

export interface MtlsOptions {
  /** Trust domains accepted; empty or absent: any the client CAs vouch for. */
  readonly trustDomains?: readonly string[];
  /** Roles per SPIFFE ID or prefix (`--mtls-roles`); default none. */
  readonly roles?: SpiffeRoles;
  /** How long a "not revoked" fingerprint lookup is trusted (ms, default 2000). */
  readonly revocationCacheMs?: number;
}

export class MtlsAuthenticator implements Authenticator {
  private readonly roles: SpiffeRoles;
  private readonly domains: ReadonlySet<string>;

  constructor(
    private readonly revoked: RevokedCertRepo,
    o: MtlsOptions = {},
  ) {
    this.roles = o.roles ?? SpiffeRoles.none;
    this.domains = new Set(o.trustDomains ?? []);
  }

  async authenticate(req: FastifyRequest): Promise<AuthResult> {
    const sock = req.raw.socket as Partial<TLSSocket>;
    const cert = sock.getPeerX509Certificate?.();
    if (!cert) return null; // no certificate presented (or not TLS): the bearer authenticators decide
    const fingerprint = createHash("sha256").update(cert.raw).digest("hex");
    const refuse = (why: string) => ({
      denied: `client certificate refused: ${why}`,
      subject: `cert:${fingerprint}`,
    });
    if (!sock.authorized)
      return refuse(
        `not trusted by --client-ca (${String(sock.authorizationError ?? "unverified")})`,
      );
    if (cert.ca) return refuse("a CA certificate is not a workload identity");
    let uris: string[];
    try {
      uris = uriSubjectAltNames(cert.raw);
    } catch {
      return refuse("subjectAltName does not parse");
    }
    if (uris.length === 0) return refuse("no SPIFFE ID (no URI subjectAltName)");
    if (uris.length > 1)
      return refuse(`${uris.length} URI subjectAltNames: an X509-SVID has exactly one`);
    const id = parseSpiffeId(uris[0]!);
    if ("invalid" in id) return refuse(`malformed SPIFFE ID: ${id.invalid}`);
    if (this.domains.size > 0 && !this.domains.has(id.trustDomain))
      return refuse(`trust domain ${id.trustDomain} is not allowed (--spiffe-trust-domain)`);
    if (await this.revoked.isRevoked(fingerprint)) return refuse("revoked (service cert revoke)");
    req.clientCert = { subject: cert.subject, fingerprint, spiffeId: id.id };
    if (req.headers.authorization !== undefined) return null; // the bearer token authenticates
    const p: Principal = {
      id: id.id,
      kind: "mtls",
      roles: this.roles.rolesOf(id.id),
      type: "Workload",
      workload: { kind: "spiffe", id: id.id, spiffeId: id.id },
    };
    return p;
  }
}
