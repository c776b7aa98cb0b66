/**
 * Service checks that need no token: the URL's scheme (plain HTTP to a host other than
 * loopback is service.plaintext-http) and the certificate the service presents
 * (service.tls-cert-expiring: a warning within `warnDays` of its notAfter, an error once past).
 * The handshake trusts nothing and sends nothing: it only reads the certificate, and notes
 * whether its chain verifies against the trust store the clients use (TENSORSEAL_SERVER_CA when
 * set, else the system's): service.tls-untrusted (an error) when it does not, self-signed or
 * not. A certificate the caller pins through TENSORSEAL_SERVER_CA (a private CA, or a
 * self-signed certificate given as its own CA) verifies and is not reported (docs/DECISIONS.md).
 */
import { readFileSync } from "node:fs";
import { connect } from "node:tls";
import type { Finding } from "./findings.js";

const HANDSHAKE_TIMEOUT_MS = 10_000;

export async function checkService(url: string, now: Date, warnDays: number): Promise<Finding[]> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, "");
  if (u.protocol === "http:") {
    if (isLoopback(host)) return [];
    return [
      {
        id: "service.plaintext-http",
        severity: "error",
        message: `the key service ${u.origin} is reached over plain HTTP`,
        evidence: `scheme http, host ${host} (not loopback)`,
        fix: "serve it over TLS (tensorseal serve --tls-cert/--tls-key, or a TLS proxy) and use an https:// URL",
      },
    ];
  }
  const port = Number(u.port || 443);
  let notAfter: Date;
  const out: Finding[] = [];
  try {
    const peer = await peerCertificate(host, port);
    notAfter = peer.notAfter;
    if (peer.untrusted) out.push(untrustedFinding(u.origin, peer.untrusted, peer.selfSigned));
  } catch (e) {
    return [
      {
        id: "service.unreachable",
        severity: "error",
        message: `no TLS handshake with the key service ${u.origin}`,
        evidence: (e as Error).message,
        fix: "check the URL and that the service is running (tensorseal doctor --server URL)",
      },
    ];
  }
  const daysLeft = (notAfter.getTime() - now.getTime()) / 86400_000;
  if (daysLeft > warnDays) return out;
  const expired = daysLeft <= 0;
  return [
    ...out,
    {
      id: "service.tls-cert-expiring",
      severity: expired ? "error" : "warning",
      message: expired
        ? `the key service's TLS certificate expired on ${notAfter.toISOString()}`
        : `the key service's TLS certificate expires in ${Math.floor(daysLeft)} day(s), on ${notAfter.toISOString()}`,
      evidence: `${u.origin}: certificate notAfter ${notAfter.toISOString()}; warning window ${warnDays} days`,
      fix: "renew the service certificate and restart or reload the service",
    },
  ];
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

function untrustedFinding(origin: string, why: string, selfSigned: boolean): Finding {
  const store = process.env.TENSORSEAL_SERVER_CA
    ? "TENSORSEAL_SERVER_CA"
    : "the system trust store (TENSORSEAL_SERVER_CA is not set)";
  return {
    id: "service.tls-untrusted",
    severity: "error",
    message: selfSigned
      ? `the key service ${origin} presents a self-signed certificate its clients do not trust`
      : `the key service ${origin} presents a certificate chain that does not verify`,
    evidence: `${origin}: ${why}; checked against ${store}`,
    fix: "serve a certificate from a CA the clients trust (or a private CA whose certificate they are given in TENSORSEAL_SERVER_CA), for the host name they use",
  };
}

interface Peer {
  notAfter: Date;
  /** Why the chain does not verify (null: it does). */
  untrusted: string | null;
  selfSigned: boolean;
}

function peerCertificate(host: string, port: number): Promise<Peer> {
  const caFile = process.env.TENSORSEAL_SERVER_CA;
  return new Promise((resolve, reject) => {
    const socket = connect({
      host,
      port,
      ...(isIp(host) ? {} : { servername: host }),
      ...(caFile ? { ca: readFileSync(caFile) } : {}),
      // Reading the certificate is the whole point: an untrusted or expired one must be seen.
      rejectUnauthorized: false,
    });
    socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () =>
      socket.destroy(new Error(`no answer within ${HANDSHAKE_TIMEOUT_MS / 1000}s`)),
    );
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate();
      const authorized = socket.authorized;
      const error = socket.authorizationError;
      socket.end();
      const t = new Date(cert?.valid_to ?? "");
      if (Number.isNaN(t.getTime())) reject(new Error("the service presented no certificate"));
      else
        resolve({
          notAfter: t,
          untrusted: authorized ? null : String(error ?? "not authorized"),
          selfSigned:
            String(error).includes("SELF_SIGNED") ||
            (cert.subject !== undefined &&
              cert.issuer !== undefined &&
              JSON.stringify(cert.subject) === JSON.stringify(cert.issuer)),
        });
    });
    socket.once("error", (e) => reject(e));
  });
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}
