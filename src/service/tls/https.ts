/** The server side of TLS: the material buildServer takes, and Node's https options from it. */

/**
 * TLS material (PEM). `clientCa` (CAs trusted for client certificates) turns on mTLS; `crl`
 * (PEM CRLs of those CAs) makes a revoked certificate fail with CERT_REVOKED — every client CA
 * then needs one.
 */
export interface ServerTls {
  key: string | Buffer;
  cert: string | Buffer;
  clientCa?: string | Buffer;
  crl?: string | Buffer;
}

/**
 * A client certificate is requested but never enforced at the handshake: the mTLS
 * authenticator answers a bad one with an audited 401 (see auth/mtls.ts).
 */
export function httpsOptions(t: ServerTls) {
  return {
    key: t.key,
    cert: t.cert,
    minVersion: "TLSv1.2" as const,
    ...(t.clientCa
      ? {
          ca: t.clientCa,
          requestCert: true,
          rejectUnauthorized: false,
          ...(t.crl ? { crl: t.crl } : {}),
        }
      : {}),
  };
}
