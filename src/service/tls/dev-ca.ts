/**
 * `serve --dev`: a local CA and a server certificate for localhost, 127.0.0.1 and ::1 (plus
 * the listen host), kept in $TENSORSEAL_HOME/service-dev/ with private keys at mode 0600 and
 * reused while valid. Clients trust the CA with TENSORSEAL_SERVER_CA. The same CA issues
 * client certificates with a SPIFFE ID (`service cert issue`) and CRLs, so mTLS can be tried
 * locally (`serve --client-ca service-dev/ca.pem`). Development only: the CA key sits next to
 * the server key.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  X509Certificate,
} from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { fail } from "../../format/errors.js";
import { certificate, crl, pem } from "./der.js";

export interface DevTls {
  readonly dir: string;
  readonly caPath: string;
  readonly key: string;
  readonly cert: string;
}

const DAY = 86_400_000;
const CA_NAME = "TensorSeal development CA";

export async function ensureDevTls(home: string, host = "localhost"): Promise<DevTls> {
  const dir = join(home, "service-dev");
  const p = {
    caCert: join(dir, "ca.pem"),
    caKey: join(dir, "ca.key"),
    cert: join(dir, "server.pem"),
    key: join(dir, "server.key"),
  };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (!(await usable(p.cert, p.caCert, host))) await generate(p, host);
  return {
    dir,
    caPath: p.caCert,
    key: await readFile(p.key, "utf8"),
    cert: await readFile(p.cert, "utf8"),
  };
}

async function usable(certPath: string, caPath: string, host: string): Promise<boolean> {
  if (!existsSync(certPath) || !existsSync(caPath)) return false;
  const cert = new X509Certificate(await readFile(certPath));
  const ca = new X509Certificate(await readFile(caPath));
  const names = isIP(host) ? cert.checkIP(host) : cert.checkHost(host);
  return (
    Date.parse(cert.validTo) > Date.now() + DAY && cert.verify(ca.publicKey) && names !== undefined
  );
}

async function generate(
  p: Record<"caCert" | "caKey" | "cert" | "key", string>,
  host: string,
): Promise<void> {
  const now = new Date(Date.now() - 60_000);
  let caKey = existsSync(p.caKey) ? createPrivateKey(await readFile(p.caKey)) : null;
  let caCert = existsSync(p.caCert) && caKey ? new X509Certificate(await readFile(p.caCert)) : null;
  if (!caKey || !caCert || Date.parse(caCert.validTo) < Date.now() + 30 * DAY) {
    caKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const caPub = createPublicKey(caKey);
    const der = certificate({
      serial: randomBytes(16),
      subject: CA_NAME,
      issuer: CA_NAME,
      notBefore: now,
      notAfter: new Date(now.getTime() + 825 * DAY),
      publicKey: caPub,
      issuerPublicKey: caPub,
      signingKey: caKey,
      ca: true,
    });
    await writePrivate(p.caKey, caKey.export({ type: "pkcs8", format: "pem" }) as string);
    await writeFile(p.caCert, pem("CERTIFICATE", der));
    caCert = new X509Certificate(der);
  }
  const leaf = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const dns = [...new Set(["localhost", ...(isIP(host) ? [] : [host])])];
  const ips = [Buffer.from([127, 0, 0, 1]), Buffer.from("00000000000000000000000000000001", "hex")];
  if (isIP(host) === 4) ips.push(Buffer.from(host.split(".").map(Number)));
  const der = certificate({
    serial: randomBytes(16),
    subject: dns[0]!,
    issuer: CA_NAME,
    notBefore: now,
    notAfter: new Date(now.getTime() + 90 * DAY),
    publicKey: leaf.publicKey,
    issuerPublicKey: caCert.publicKey,
    signingKey: caKey,
    ca: false,
    dns,
    ips,
  });
  await writePrivate(p.key, leaf.privateKey.export({ type: "pkcs8", format: "pem" }) as string);
  await writeFile(p.cert, pem("CERTIFICATE", der));
}

async function writePrivate(path: string, data: string): Promise<void> {
  await writeFile(path, data, { mode: 0o600 });
  await chmod(path, 0o600);
}

export interface DevCa {
  readonly cert: X509Certificate;
  readonly key: KeyObject;
}

/** The CA `serve --dev` made in $home/service-dev/; E_USAGE when there is none. */
export async function loadDevCa(home: string): Promise<DevCa> {
  const dir = join(home, "service-dev");
  const certPath = join(dir, "ca.pem");
  const keyPath = join(dir, "ca.key");
  if (!existsSync(certPath) || !existsSync(keyPath))
    fail("E_USAGE", `no development CA in ${dir}: run \`tensorseal serve --dev\` once first`);
  return {
    cert: new X509Certificate(await readFile(certPath)),
    key: createPrivateKey(await readFile(keyPath)),
  };
}

export interface ClientCertOptions {
  /** URI subjectAltNames: normally exactly one SPIFFE ID (tests also build wrong ones). */
  readonly uris: readonly string[];
  readonly notBefore?: Date;
  /** Default notBefore + 30 days. */
  readonly notAfter?: Date;
  readonly subject?: string;
}

export interface IssuedCert {
  readonly cert: string;
  readonly key: string;
  /** SHA-256 of the DER, lowercase hex (what `service cert revoke` takes). */
  readonly fingerprint: string;
  readonly serial: Buffer;
}

/** A P-256 client certificate (clientAuth EKU, URI SANs) signed by the dev CA. */
export function issueClientCert(ca: DevCa, o: ClientCertOptions): IssuedCert {
  const leaf = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
  const serial = randomBytes(16);
  serial[0]! &= 0x7f; // positive, so the CRL entry encodes the same INTEGER
  const der = certificate({
    serial,
    subject: o.subject ?? "TensorSeal development client",
    issuer: CA_NAME,
    notBefore,
    notAfter: o.notAfter ?? new Date(notBefore.getTime() + 30 * DAY),
    publicKey: leaf.publicKey,
    issuerPublicKey: ca.cert.publicKey,
    signingKey: ca.key,
    ca: false,
    uris: o.uris,
    usage: "client",
  });
  return {
    cert: pem("CERTIFICATE", der),
    key: leaf.privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    fingerprint: new X509Certificate(der).fingerprint256.replace(/:/g, "").toLowerCase(),
    serial,
  };
}

/** A PEM CRL of the dev CA revoking the given serials, valid for `days` (default 7). */
export function devCrl(ca: DevCa, serials: readonly Buffer[], days = 7, number = 1): string {
  const now = new Date(Date.now() - 60_000);
  return pem(
    "X509 CRL",
    crl({
      issuer: CA_NAME,
      issuerPublicKey: ca.cert.publicKey,
      signingKey: ca.key,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + days * DAY),
      number,
      revoked: serials.map((serial) => ({ serial, date: now })),
    }),
  );
}

/** Writes client.pem and client.key (0600) into `dir`; returns their paths. */
export async function writeClientCert(
  dir: string,
  c: IssuedCert,
): Promise<{ cert: string; key: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const paths = { cert: join(dir, "client.pem"), key: join(dir, "client.key") };
  await writePrivate(paths.key, c.key);
  await writeFile(paths.cert, c.cert);
  return paths;
}
