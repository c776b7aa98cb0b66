/**
 * TLS material replaced while serving (`app.tensorseal.reloadTls`): a rotated server
 * certificate, new client CAs or a new CRL, without a restart. New connections get the new
 * material at once (https.Server#setSecureContext).
 *
 * A connection is verified once, at its handshake, so a client certificate that the new CAs or
 * CRL no longer accept could go on over a kept-alive connection. So when the client trust
 * changes, a request on a connection that presented a certificate before the change is answered
 * 421 Misdirected Request with `Connection: close` (RFC 9110 §15.5.20: the client may retry on
 * a new connection, whose handshake the new material decides). Connections without a client
 * certificate, and every connection after a server-certificate-only change, go on as they were.
 */
import { createHash, X509Certificate } from "node:crypto";
import type { Server } from "node:https";
import { createSecureContext, type TLSSocket } from "node:tls";
import { httpsOptions, type ServerTls } from "./https.js";

/** What a reload installs, for the audit entry and the log: digests only, never key material. */
export interface TlsReloadSummary {
  /** SHA-256 fingerprint of the (first) server certificate. */
  readonly serverCert: string;
  readonly serverCertExpires: string;
  /** SHA-256 of the client CA bundle and CRL texts as given; null when there is none. */
  readonly clientCa: string | null;
  readonly crl: string | null;
  /** Client CAs or CRL differ from before: older mTLS connections get 421. */
  readonly clientTrustChanged: boolean;
}

export interface PreparedTls {
  readonly material: ServerTls;
  readonly summary: TlsReloadSummary;
}

export class TlsReloader {
  private trust = 0;
  private readonly verifiedUnder = new WeakMap<TLSSocket, number>();

  constructor(
    private current: ServerTls,
    private readonly server: Server,
    private readonly now: () => number = Date.now,
  ) {
    server.on("secureConnection", (s: TLSSocket) => this.verifiedUnder.set(s, this.trust));
  }

  /** Whether a request on this socket must be retried on a new connection (see above). */
  stale(socket: TLSSocket): boolean {
    const at = this.verifiedUnder.get(socket);
    return at !== undefined && at < this.trust && socket.getPeerX509Certificate?.() !== undefined;
  }

  /**
   * Checks that `next` makes a working TLS context and may replace the current one; throws an
   * Error saying what is wrong otherwise. Changes nothing.
   */
  prepare(next: ServerTls): PreparedTls {
    if (Boolean(next.clientCa) !== Boolean(this.current.clientCa))
      throw new Error("mTLS (client CAs) is switched on or off only by a restart");
    if (next.crl && !next.clientCa) throw new Error("a client CRL needs client CAs");
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(next.cert);
    } catch {
      throw new Error("the server certificate is not a PEM certificate");
    }
    if (Date.parse(cert.validTo) <= this.now())
      throw new Error(`the server certificate expired on ${cert.validTo}`);
    try {
      // Parses every PEM and checks that the key belongs to the certificate.
      createSecureContext(httpsOptions(next));
    } catch (e) {
      throw new Error(`the TLS material does not load: ${(e as Error).message}`);
    }
    const clientTrustChanged =
      !same(next.clientCa, this.current.clientCa) || !same(next.crl, this.current.crl);
    return {
      material: next,
      summary: {
        serverCert: cert.fingerprint256.replace(/:/g, "").toLowerCase(),
        serverCertExpires: new Date(cert.validTo).toISOString(),
        clientCa: digest(next.clientCa),
        crl: digest(next.crl),
        clientTrustChanged,
      },
    };
  }

  /** Installs prepared material: new handshakes use it; older mTLS connections get 421. */
  apply(p: PreparedTls): void {
    this.server.setSecureContext(httpsOptions(p.material));
    this.current = p.material;
    if (p.summary.clientTrustChanged) this.trust++;
  }
}

function same(a: string | Buffer | undefined, b: string | Buffer | undefined): boolean {
  return Buffer.from(a ?? "").equals(Buffer.from(b ?? ""));
}

function digest(v: string | Buffer | undefined): string | null {
  return v ? createHash("sha256").update(v).digest("hex") : null;
}
