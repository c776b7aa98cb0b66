/**
 * `doctor --server`: the certificate a TLS service presents, read from a real loopback TLS
 * server whose self-signed certificate expires in 20 days (untrusted unless pinned through
 * TENSORSEAL_SERVER_CA); plain HTTP to a host that is not loopback; and a service nobody
 * answers for.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createServer, type Server } from "node:tls";
import { certificate, pem } from "../../src/service/tls/der.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { of } from "./helpers.js";

const DAY = 86400_000;
let s: Sandbox;
let server: Server;
let url: string;
let caFile: string;
const notAfter = new Date(Date.now() + 20 * DAY);

before(async () => {
  s = sandbox();
  assert.equal(s.run(["init"]).status, 0);
  const k = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const der = certificate({
    serial: randomBytes(16),
    subject: "localhost",
    issuer: "localhost",
    notBefore: new Date(Date.now() - DAY),
    notAfter,
    publicKey: k.publicKey,
    issuerPublicKey: k.publicKey,
    signingKey: k.privateKey,
    ca: false,
    dns: ["localhost"],
    ips: [Buffer.from([127, 0, 0, 1])],
  });
  caFile = join(s.dir, "self-signed.pem");
  writeFileSync(caFile, pem("CERTIFICATE", der));
  server = createServer(
    {
      cert: pem("CERTIFICATE", der),
      key: k.privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    },
    (socket) => socket.end(),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address() as { port: number };
  url = `https://127.0.0.1:${addr.port}`;
});
after(() => {
  server.close();
  s.cleanup();
});

async function doctor(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = await s.runAsync(["doctor", "--json", "--fail-on", "none", ...args], env);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test("a certificate expiring within --cert-days is a warning; outside it, nothing", async () => {
  assert.deepEqual(
    of(await doctor(["--server", url, "--cert-days", "10"]), "service.tls-cert-expiring"),
    [],
  );
  const j = await doctor(["--server", url]); // the default window: 30 days
  const f = of(j, "service.tls-cert-expiring");
  assert.equal(f.length, 1);
  assert.equal(f[0]!.severity, "warning");
  assert.match(f[0]!.message, /expires in (19|20) day\(s\)/);
  // The certificate's notAfter (UTCTime, encoded to the minute here).
  assert.match(f[0]!.evidence, new RegExp(`notAfter ${notAfter.toISOString().slice(0, 16)}`));
  // TENSORSEAL_SERVER is the default for --server.
  const fromEnv = await doctor([], { TENSORSEAL_SERVER: url });
  assert.equal(of(fromEnv, "service.tls-cert-expiring").length, 1);
});

test("an expired certificate is an error (the clock moved past notAfter)", async () => {
  const later = new Date(notAfter.getTime() + DAY).toISOString();
  const f = of(
    await doctor(["--server", url], { TENSORSEAL_NOW: later }),
    "service.tls-cert-expiring",
  );
  assert.deepEqual(
    f.map((x) => x.severity),
    ["error"],
  );
  assert.match(f[0]!.message, /expired on/);
});

test("a self-signed certificate the client does not trust is service.tls-untrusted; pinned, nothing", async () => {
  const f = of(await doctor(["--server", url]), "service.tls-untrusted");
  assert.deepEqual(
    f.map((x) => x.severity),
    ["error"],
  );
  assert.match(f[0]!.message, /self-signed certificate/);
  assert.match(f[0]!.evidence, /SELF_SIGNED/);
  assert.match(f[0]!.evidence, /system trust store/);
  // The caller trusts it explicitly (TENSORSEAL_SERVER_CA): it verifies, no finding.
  const pinned = await doctor(["--server", url], { TENSORSEAL_SERVER_CA: caFile });
  assert.deepEqual(of(pinned, "service.tls-untrusted"), []);
  assert.equal(of(pinned, "service.tls-cert-expiring").length, 1);
});

test("plain HTTP: an error for a remote host, nothing for loopback", async () => {
  const remote = of(
    await doctor(["--server", "http://keys.example.com:8080"]),
    "service.plaintext-http",
  );
  assert.deepEqual(
    remote.map((x) => x.severity),
    ["error"],
  );
  assert.deepEqual(
    of(await doctor(["--server", "http://127.0.0.1:8080"]), "service.plaintext-http"),
    [],
  );
});

test("nobody answering is service.unreachable", async () => {
  const closed = createNetServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
  const port = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const f = of(await doctor(["--server", `https://127.0.0.1:${port}`]), "service.unreachable");
  assert.deepEqual(
    f.map((x) => x.severity),
    ["error"],
  );
  assert.match(f[0]!.evidence, /ECONNREFUSED/);
});
