/**
 * TLS material replaced while serving (`app.tensorseal.reloadTls`), over a real TLS loopback
 * server with the dev CA: a new CRL revokes a certificate for new connections and for
 * kept-alive ones (421, then 401 on a new connection), a rotated server certificate reaches new
 * connections, an unusable reload changes nothing and is not audited, and the key-service
 * client retries a 421 on a new connection by itself.
 */
import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import { rmSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, test } from "node:test";
import type { TLSSocket } from "node:tls";
import type { FastifyInstance } from "fastify";
import { ServiceClient } from "../../src/keys/index.js";
import {
  type Database,
  type DevCa,
  type DevTls,
  devCrl,
  ensureDevTls,
  type IssuedCert,
  issueClientCert,
  type ServerTls,
  SpiffeRoles,
} from "../../src/service/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { auditEntries, devMtls, server, sqliteDb, type TestDb } from "./helpers.js";

const ID = "spiffe://prod.example/ns/ml/sa/loader";
const DAY = 86_400_000;

let sb: Sandbox;
let home: string;
let tdb: TestDb;
let db: Database;
let app: FastifyInstance;
let url: string;
let dev: DevTls;
let ca: DevCa;
let caPem: string;
let crlNumber = 1;
let served: ServerTls;
let keeper: IssuedCert; // never revoked
let victim: IssuedCert; // revoked by the first reload
const logLines: string[] = [];

interface Got {
  status: number;
  reused: boolean;
  /** The connection resumed an earlier TLS session (no new certificate verification). */
  resumed: boolean;
  serverCert: string;
  connection: string | undefined;
  requestId: string;
}

/** One GET over `agent` (keep-alive, one socket), with what the connection looked like. */
function get(agent: https.Agent, path: string): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, url), { agent, method: "GET" });
    req.on("error", reject);
    req.on("response", (res) => {
      // Read now: once the body ends the socket goes back to the agent.
      const sock = res.socket as TLSSocket;
      const serverCert = sock.getPeerX509Certificate?.()?.fingerprint256 ?? "";
      const resumed = sock.isSessionReused();
      res.resume();
      res.on("end", () => {
        resolve({
          status: res.statusCode ?? 0,
          reused: req.reusedSocket,
          resumed,
          serverCert,
          connection: res.headers.connection,
          requestId: String(res.headers["x-request-id"] ?? ""),
        });
      });
    });
    req.end();
  });
}

function agentFor(c?: IssuedCert): https.Agent {
  return new https.Agent({
    keepAlive: true,
    maxSockets: 1,
    ca: caPem,
    ...(c ? { cert: c.cert, key: c.key } : {}),
  });
}

/** Closes the agent's idle connections, so its next request opens a new one. */
function dropIdle(agent: https.Agent): void {
  for (const sockets of Object.values(agent.freeSockets))
    for (const s of sockets ?? []) s.destroy();
}

function material(over: Partial<ServerTls> = {}): ServerTls {
  return { key: dev.key, cert: dev.cert, clientCa: caPem, ...over };
}

function newCrl(revoked: IssuedCert[]): string {
  crlNumber++;
  return devCrl(
    ca,
    revoked.map((c) => c.serial),
    7,
    crlNumber,
  );
}

const reloads = async () => (await auditEntries(db)).filter((e) => e.action === "tls.reload");

before(async () => {
  sb = sandbox();
  home = sb.env.TENSORSEAL_HOME!;
  ({ dev, caPem, ca } = await devMtls(home));
  keeper = issueClientCert(ca, { uris: [ID] });
  victim = issueClientCert(ca, { uris: [ID] });
  served = material({ crl: devCrl(ca, [], 7, crlNumber) });
  tdb = sqliteDb();
  db = await tdb.open();
  const stream = new Writable({
    write(chunk, _enc, done) {
      logLines.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });
  app = await server(db, {
    tls: served,
    mtls: { roles: SpiffeRoles.parse(JSON.stringify({ [ID]: ["admin"] }), "roles") },
    sweepEveryMs: 0,
    logger: { level: "info", stream },
  });
  url = await app.listen({ host: "127.0.0.1", port: 0 });
});

after(async () => {
  await app.close();
  await db.close();
  await tdb.drop();
  sb.cleanup();
});

test("a new CRL revokes a certificate on new and on kept-alive connections (421, then 401)", async () => {
  const v = agentFor(victim);
  const k = agentFor(keeper);
  try {
    assert.equal((await get(v, "/v1/keys")).status, 200);
    const again = await get(v, "/v1/keys");
    assert.equal(again.status, 200);
    assert.ok(again.reused, "the second request went over the kept-alive connection");
    assert.equal((await get(k, "/v1/keys")).status, 200);
    // Without a reload, a new connection resumes the agent's cached TLS session...
    dropIdle(v);
    const resumedBefore = await get(v, "/v1/keys");
    assert.deepEqual(
      [resumedBefore.status, resumedBefore.reused, resumedBefore.resumed],
      [200, false, true],
    );

    const crl = newCrl([victim]);
    const summary = await app.tensorseal.reloadTls(material({ crl }));
    assert.equal(summary.clientTrustChanged, true);
    assert.equal(summary.crl, createHash("sha256").update(crl).digest("hex"));
    served = material({ crl });

    // The connection verified under the old CRL is not trusted for another request.
    const stale = await get(v, "/v1/keys");
    assert.equal(stale.status, 421);
    assert.ok(stale.reused);
    assert.equal(stale.connection, "close");
    const entries = await auditEntries(db);
    assert.ok(
      !entries.some((e) => e.requestId === stale.requestId),
      "a 421 is answered before anything is authenticated or audited",
    );
    // A new connection's handshake meets the new CRL.
    // ...after one, it cannot: the session was verified under the old CRL.
    const revoked = await get(v, "/v1/keys");
    assert.deepEqual([revoked.reused, revoked.resumed], [false, false]);
    assert.equal(revoked.status, 401);
    const denied = (await auditEntries(db)).at(-1)!;
    assert.equal(denied.outcome, "denied");
    assert.match(String(denied.reason), /CERT_REVOKED/);
    // A certificate the new CRL does not name goes on (after one 421 of its own).
    assert.equal((await get(k, "/v1/keys")).status, 421);
    assert.equal((await get(k, "/v1/keys")).status, 200);

    const audited = (await reloads()).at(-1)!;
    assert.equal(audited.principal, "system:operator");
    assert.deepEqual(audited.resource, { ...summary });
    assert.ok(!JSON.stringify(await auditEntries(db)).includes("BEGIN"), "no PEM in the audit");
    assert.ok(!logLines.join("\n").includes("PRIVATE KEY"), "no key in the log");
  } finally {
    v.destroy();
    k.destroy();
  }
});

test("a rotated server certificate reaches new connections; kept-alive ones go on, no 421", async () => {
  const plain = agentFor(); // no client certificate
  const k = agentFor(keeper);
  try {
    const before1 = await get(plain, "/v1/info");
    assert.equal(before1.status, 200);
    assert.equal((await get(k, "/v1/keys")).status, 200);
    const old = new X509Certificate(dev.cert).fingerprint256;
    assert.equal(before1.serverCert, old);

    rmSync(join(home, "service-dev", "server.pem"));
    rmSync(join(home, "service-dev", "server.key"));
    dev = await ensureDevTls(home); // a new server key and certificate from the same CA
    const fresh = new X509Certificate(dev.cert).fingerprint256;
    assert.notEqual(fresh, old);
    const summary = await app.tensorseal.reloadTls(material({ crl: served.crl! }));
    assert.equal(summary.clientTrustChanged, false);
    assert.equal(summary.serverCert, fresh.replace(/:/g, "").toLowerCase());
    served = material({ crl: served.crl! });

    // The connection made under the old certificate (before1) is still in use.
    const kept = await get(plain, "/v1/info");
    assert.deepEqual([kept.status, kept.reused], [200, true]);
    const keptMtls = await get(k, "/v1/keys");
    assert.deepEqual([keptMtls.status, keptMtls.reused], [200, true]);
    const other = agentFor();
    try {
      const n = await get(other, "/v1/info");
      assert.deepEqual([n.status, n.reused, n.serverCert], [200, false, fresh]);
    } finally {
      other.destroy();
    }
  } finally {
    plain.destroy();
    k.destroy();
  }
});

test("an unusable reload is refused, changes nothing and is not audited", async () => {
  const count = (await reloads()).length;
  const otherKey = issueClientCert(ca, { uris: [] }).key;
  const expired = issueClientCert(ca, {
    uris: [],
    notBefore: new Date(Date.now() - 10 * DAY),
    notAfter: new Date(Date.now() - DAY),
  });
  const bad: [ServerTls, RegExp][] = [
    [{ ...served, key: otherKey }, /does not load/],
    [{ ...served, cert: expired.cert, key: expired.key }, /expired/],
    [{ ...served, cert: "not a certificate" }, /not a PEM certificate/],
    [{ ...served, crl: "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n" }, /load/],
    [{ key: served.key, cert: served.cert }, /restart/],
  ];
  for (const [m, why] of bad) {
    await assert.rejects(app.tensorseal.reloadTls(m), why);
  }
  assert.equal((await reloads()).length, count);
  // Still serving the last good material: its certificate, and mTLS as before.
  const k = agentFor(keeper);
  try {
    const r = await get(k, "/v1/keys");
    assert.equal(r.status, 200);
    assert.equal(r.serverCert, new X509Certificate(dev.cert).fingerprint256);
  } finally {
    k.destroy();
  }
});

test("the key-service client retries a 421 on a new connection by itself", async () => {
  const client = new ServiceClient({ url, ca: caPem, cert: keeper.cert, key: keeper.key });
  try {
    assert.equal((await client.get("/v1/keys")).status, 200);
    const before421 = logLines.filter((l) => l.includes('"status":421')).length;
    served = material({ crl: newCrl([victim]) });
    await app.tensorseal.reloadTls(served);
    const r = await client.get("/v1/keys");
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const after421 = logLines.filter((l) => l.includes('"status":421')).length;
    assert.equal(after421 - before421, 1, "one 421 on the old connection, then a new one");
  } finally {
    client.close();
  }
});

test("concurrent reloads run one after the other, each judged against the one before", async () => {
  const original = served; // what the server has now
  const revoking = material({ crl: newCrl([keeper]) });
  const [a, b] = await Promise.all([
    app.tensorseal.reloadTls(revoking),
    app.tensorseal.reloadTls(original), // back to what it had before both
  ]);
  assert.equal(a.clientTrustChanged, true);
  assert.equal(
    b.clientTrustChanged,
    true,
    "B undoes A's CRL: a change, though it equals what was there before A",
  );
  const [ea, eb] = (await reloads()).slice(-2);
  assert.deepEqual([ea!.resource, eb!.resource], [{ ...a }, { ...b }]);
  const k = agentFor(keeper);
  try {
    assert.equal((await get(k, "/v1/keys")).status, 200, "the last reload is in force");
  } finally {
    k.destroy();
  }
});
