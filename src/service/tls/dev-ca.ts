/**
 * `serve --dev`: a local CA and a server certificate for localhost, 127.0.0.1 and ::1 (plus
 * the listen host), kept in $TENSORSEAL_HOME/service-dev/ with private keys at mode 0600 and
 * reused while valid. Clients trust the CA with TENSORSEAL_SERVER_CA. Development only: the CA
 * key sits next to the server key.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  X509Certificate,
} from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { certificate, pem } from "./der.js";

export interface DevTls {
  readonly dir: string;
  readonly caPath: string;
  readonly key: string;
  readonly cert: string;
}

const DAY = 86_400_000;

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
      subject: "TensorSeal development CA",
      issuer: "TensorSeal development CA",
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
    issuer: "TensorSeal development CA",
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
