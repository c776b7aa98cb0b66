/**
 * Containment of an mTLS workload (SPIFFE ID principal) over a real TLS loopback server: the
 * service's `contain` operation blocks the principal and revokes the client certificate it was
 * seen using (first-seen detection recorded its fingerprint), so that certificate is refused
 * at authentication (401) and another certificate for the same SPIFFE ID is still refused by
 * the block (403). A workload that was not contained is untouched. An unwrap-only token may
 * not contain (403, nothing blocked): containment fails closed.
 */
import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { ServiceClient } from "../../src/keys/index.js";
import {
  type Database,
  type IssuedCert,
  issueClientCert,
  SpiffeRoles,
} from "../../src/service/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import {
  bearer,
  devMtls,
  keyAndDataKey,
  server,
  sqliteDb,
  type TestDb,
  token,
} from "../service/helpers.js";

const TD = "prod.example";
const LOADER = `spiffe://${TD}/ns/ml/sa/loader`;
const OTHER = `spiffe://${TD}/ns/ml/sa/other`;

let sb: Sandbox;
let tdb: TestDb;
let db: Database;
let app: FastifyInstance;
let url: string;
let caPem: string;
let admin: string;
let stanza: unknown;
const certs: Record<string, IssuedCert> = {};

const fingerprint = (c: IssuedCert) =>
  createHash("sha256").update(new X509Certificate(c.cert).raw).digest("hex");

async function unwrap(c: IssuedCert) {
  const cl = new ServiceClient({ url, ca: caPem, cert: c.cert, key: c.key });
  try {
    return await cl.post("/v1/datakeys/unwrap", { stanza });
  } finally {
    cl.close();
  }
}

before(async () => {
  sb = sandbox();
  const { dev, ca, caPem: pem } = await devMtls(sb.env.TENSORSEAL_HOME!);
  caPem = pem;
  certs.loader = issueClientCert(ca, { uris: [LOADER] });
  certs.loader2 = issueClientCert(ca, { uris: [LOADER] });
  certs.other = issueClientCert(ca, { uris: [OTHER] });
  tdb = sqliteDb();
  db = await tdb.open();
  app = await server(db, {
    tls: { ...dev, clientCa: caPem },
    mtls: {
      trustDomains: [TD],
      roles: SpiffeRoles.parse(JSON.stringify({ [`spiffe://${TD}/ns/ml/*`]: ["unwrap"] }), "r"),
      revocationCacheMs: 0,
    },
    anomaly: {},
    sweepEveryMs: 0,
  });
  admin = await token(db, "admin,wrap");
  ({ stanza } = await keyAndDataKey(app, admin, "m"));
  url = await app.listen({ host: "127.0.0.1", port: 0 });
});

after(async () => {
  await app.close();
  await db.close();
  await tdb.drop();
  sb.cleanup();
});

test("contain revokes the certificate the workload used and blocks its SPIFFE ID", async () => {
  for (const c of ["loader", "other"]) assert.equal((await unwrap(certs[c]!)).status, 200);
  // First-seen detection recorded the fingerprint with the principal.
  const seen = await db.db
    .selectFrom("anomaly_clients")
    .select("cert")
    .where("principal", "=", LOADER)
    .execute();
  assert.deepEqual(
    seen.map((r) => r.cert),
    [fingerprint(certs.loader!)],
  );

  // Fail closed: a token that may not contain changes nothing.
  const weak = await token(db, "unwrap");
  const denied = await app.inject({
    method: "POST",
    url: "/v1/approvals",
    headers: bearer(weak),
    payload: { operation: "contain", principals: [LOADER] },
  });
  assert.equal(denied.statusCode, 403, denied.body);
  assert.equal((await unwrap(certs.loader!)).status, 200, "nothing contained");

  const r = await app.inject({
    method: "POST",
    url: "/v1/approvals",
    headers: bearer(admin),
    payload: { operation: "contain", principals: [LOADER], reason: "workload host compromised" },
  });
  assert.equal(r.statusCode, 200, r.body);
  const v = r.json();
  assert.equal(v.state, "executed");
  assert.deepEqual(v.outcome.contained, [
    { principal: LOADER, blocked: true, certsRevoked: [fingerprint(certs.loader!)] },
  ]);

  const used = await unwrap(certs.loader!);
  assert.equal(used.status, 401, "the certificate it used is revoked");
  assert.match(String(used.body.message ?? used.body.error ?? ""), /revoked/);
  assert.equal((await unwrap(certs.loader2!)).status, 403, "a new certificate: still blocked");
  assert.equal((await unwrap(certs.other!)).status, 200, "another workload is untouched");

  // Malformed input is refused before anything happens.
  const bad = await app.inject({
    method: "POST",
    url: "/v1/approvals",
    headers: bearer(admin),
    payload: { operation: "contain", principals: [OTHER], fingerprints: ["zz"] },
  });
  assert.equal(bad.statusCode, 400, bad.body);
  assert.equal((await unwrap(certs.other!)).status, 200);
});
