/**
 * mTLS with SPIFFE IDs over a real TLS loopback server with the dev CA: allowed SVIDs (Cedar
 * policy on the SPIFFE ID, roles file), every refused certificate (401/403, no key, audited
 * with `cert:<fingerprint>` and a reason), token + certificate precedence, fingerprint
 * revocation across two replicas sharing one database, and the CLI with only a certificate.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { ServiceClient } from "../../src/keys/index.js";
import {
  Authorizer,
  type Database,
  DEFAULT_POLICIES,
  type DevCa,
  devCrl,
  ensureDevTls,
  type IssuedCert,
  issueClientCert,
  loadDevCa,
  RevokedCertRepo,
  SpiffeRoles,
} from "../../src/service/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import {
  type AuditEntryView,
  devMtls,
  keyAndDataKey,
  lastAuditEntry,
  server,
  sqliteDb,
  type TestDb,
  token,
} from "./helpers.js";

const TD = "prod.example";
const LOADER = `spiffe://${TD}/ns/ml/sa/loader`; // allowed by a Cedar policy on spiffeId
const ROLED = `spiffe://${TD}/ns/ml/sa/roled`; // allowed by the roles file
const DAY = 86_400_000;

const POLICIES = {
  ...DEFAULT_POLICIES,
  "loader-unwraps": `permit (principal, action == TensorSeal::Action::"unwrap", resource == TensorSeal::Key::"m")
    when { context.workload has spiffeId && context.workload.spiffeId == "${LOADER}" };`,
  // Shows context.clientCert reaching Cedar when a token authenticates.
  "cert-lists-keys": `permit (principal, action == TensorSeal::Action::"keys:list", resource)
    when { context has clientCert && context.clientCert has spiffeId
           && context.clientCert.spiffeId == "${LOADER}" };`,
};

let sb: Sandbox;
let tdb: TestDb;
let db: Database;
let db2: Database;
let a: FastifyInstance; // with the CRL and a short revocation cache
let b: FastifyInstance; // a second replica on the same database
let urlA: string;
let urlB: string;
let caPem: string;
let ca: DevCa;
let admin: string;
let stanza: unknown;
let fileKey: string;
const certs: Record<string, IssuedCert> = {};

function client(url: string, c?: IssuedCert, tok?: string): ServiceClient {
  return new ServiceClient({
    url,
    ca: caPem,
    ...(c ? { cert: c.cert, key: c.key } : {}),
    ...(tok ? { token: tok } : {}),
  });
}

async function unwrap(url: string, c?: IssuedCert, tok?: string) {
  const cl = client(url, c, tok);
  try {
    return await cl.post("/v1/datakeys/unwrap", { stanza });
  } finally {
    cl.close();
  }
}

before(async () => {
  sb = sandbox();
  const m = await devMtls(sb.env.TENSORSEAL_HOME!);
  const dev = m.dev;
  ({ ca, caPem } = m);
  const otherHome = join(sb.dir, "other");
  await ensureDevTls(otherHome);
  const otherCa = await loadDevCa(otherHome);
  const now = Date.now();
  const issue = (uris: string[], o: Partial<{ notBefore: Date; notAfter: Date }> = {}) =>
    issueClientCert(ca, { uris, ...o });
  Object.assign(certs, {
    loader: issue([LOADER]),
    roled: issue([ROLED]),
    norole: issue([`spiffe://${TD}/ns/ml/sa/nobody`]),
    fpRevoked: issue([LOADER]),
    unknownCa: issueClientCert(otherCa, { uris: [LOADER] }),
    expired: issue([LOADER], {
      notBefore: new Date(now - 10 * DAY),
      notAfter: new Date(now - DAY),
    }),
    crlRevoked: issue([LOADER]),
    noSpiffe: issue([]),
    httpsUri: issue(["https://prod.example/ns/ml/sa/loader"]),
    twoSpiffe: issue([LOADER, ROLED]),
    upperTd: issue(["spiffe://Prod.example/ns/ml/sa/loader"]),
    dotDot: issue([`spiffe://${TD}/ns/../sa/loader`]),
    query: issue([`spiffe://${TD}/ns/ml?x=1`]),
    port: issue([`spiffe://${TD}:8443/ns/ml`]),
    otherTd: issue([`spiffe://evil.example/ns/ml/sa/loader`]),
  });
  const tls = {
    ...dev,
    clientCa: caPem,
    crl: devCrl(ca, [certs.crlRevoked!.serial]),
  };
  const mtls = {
    trustDomains: [TD],
    roles: SpiffeRoles.parse(
      JSON.stringify({ [ROLED]: ["unwrap", "wrap"], [`spiffe://${TD}/ns/ops/*`]: ["admin"] }),
      "roles",
    ),
    revocationCacheMs: 300,
  };
  const authorizer = Authorizer.fromPolicies(POLICIES, "mtls test");
  tdb = sqliteDb();
  db = await tdb.open();
  db2 = await tdb.open();
  a = await server(db, { tls, mtls, authorizer, sweepEveryMs: 0 });
  b = await server(db2, { tls: { ...dev, clientCa: caPem }, mtls, authorizer, sweepEveryMs: 0 });
  admin = await token(db, "admin,wrap");
  ({ stanza, fileKey } = await keyAndDataKey(a, admin, "m"));
  urlA = await a.listen({ host: "127.0.0.1", port: 0 });
  urlB = await b.listen({ host: "127.0.0.1", port: 0 });
});

after(async () => {
  await a.close();
  await b.close();
  await db.close();
  await db2.close();
  await tdb.drop();
  sb.cleanup();
});

test("a SPIFFE certificate unwraps: Cedar policy on workload.spiffeId, or roles from --mtls-roles", async () => {
  const r = await unwrap(urlA, certs.loader);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.fileKey, fileKey);
  const e = await lastAuditEntry<AuditEntryView>(db);
  assert.equal(e.outcome, "allowed");
  assert.equal(e.principal, LOADER);
  assert.deepEqual(e.authz.policies, ["loader-unwraps"]);

  const r2 = await unwrap(urlA, certs.roled);
  assert.equal(r2.status, 200, JSON.stringify(r2.body));
  assert.equal(r2.body.fileKey, fileKey);
  assert.deepEqual((await lastAuditEntry<AuditEntryView>(db)).authz.policies, ["default:unwrap"]);

  // Same CA and trust domain, no role and no policy: default deny.
  const r3 = await unwrap(urlA, certs.norole);
  assert.equal(r3.status, 403);
  assert.equal(r3.body.fileKey, undefined);
  const e3 = await lastAuditEntry<AuditEntryView>(db);
  assert.equal(e3.outcome, "denied");
  assert.equal(e3.principal, `spiffe://${TD}/ns/ml/sa/nobody`);
});

test("refused certificates: 401, no key, audited as cert:<fingerprint> with the reason", async () => {
  const cases: [string, RegExp][] = [
    ["unknownCa", /not trusted by --client-ca/],
    ["expired", /not trusted.*CERT_HAS_EXPIRED/],
    ["crlRevoked", /not trusted.*CERT_REVOKED/],
    ["noSpiffe", /no SPIFFE ID/],
    ["httpsUri", /malformed SPIFFE ID: scheme/],
    ["twoSpiffe", /2 URI subjectAltNames/],
    ["upperTd", /malformed SPIFFE ID: trust domain/],
    ["dotDot", /malformed SPIFFE ID: dot segment/],
    ["query", /malformed SPIFFE ID: path characters/],
    ["port", /malformed SPIFFE ID: trust domain/],
    ["otherTd", /trust domain evil\.example is not allowed/],
  ];
  for (const [name, why] of cases) {
    const c = certs[name]!;
    const r = await unwrap(urlA, c);
    assert.equal(r.status, 401, `${name}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.fileKey, undefined, name);
    const e = await lastAuditEntry<AuditEntryView>(db);
    assert.equal(e.outcome, "denied", name);
    assert.equal(e.status, 401, name);
    assert.equal(e.principal, `cert:${c.fingerprint}`, name);
    assert.match(String(e.reason), why, name);
    // A valid bearer token does not rescue a bad certificate (fail closed).
    const rt = await unwrap(urlA, c, admin);
    assert.equal(rt.status, 401, `${name} + token: ${JSON.stringify(rt.body)}`);
    assert.equal(rt.body.fileKey, undefined);
    assert.equal((await lastAuditEntry<AuditEntryView>(db)).principal, `cert:${c.fingerprint}`);
  }
});

test("bearer token with a valid certificate: the token authenticates, the certificate is context", async () => {
  const reader = await token(db, "reader"); // no role for keys:list by itself
  const list = async (c?: IssuedCert) => {
    const cl = client(urlA, c, reader);
    try {
      return await cl.get("/v1/keys");
    } finally {
      cl.close();
    }
  };
  assert.equal((await list()).status, 403);
  const r = await list(certs.loader);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const e = await lastAuditEntry<AuditEntryView>(db);
  assert.match(String(e.principal), /^token:/);
  assert.deepEqual(e.authz.policies, ["cert-lists-keys"]);
  // Bearer tokens alone keep working on an mTLS server.
  const t = await unwrap(urlA, undefined, await token(db, "unwrap"));
  assert.equal(t.body.fileKey, fileKey);
});

test("revocation by fingerprint: the other replica at once, the caching one after its window", async () => {
  const c = certs.fpRevoked!;
  assert.equal((await unwrap(urlA, c)).status, 200); // A caches "not revoked" for 300 ms
  const out = await sb.runAsync(
    ["service", "cert", "revoke", c.fingerprint.toUpperCase(), "--reason", "key leaked"],
    { TENSORSEAL_SERVICE_DB: tdb.url },
  );
  assert.equal(out.status, 0, out.stderr);
  const rb = await unwrap(urlB, c);
  assert.equal(rb.status, 401);
  assert.equal(rb.body.fileKey, undefined);
  const eb = await lastAuditEntry<AuditEntryView>(db);
  assert.equal(eb.principal, `cert:${c.fingerprint}`);
  assert.match(String(eb.reason), /revoked/);
  await new Promise((r) => setTimeout(r, 350));
  const ra = await unwrap(urlA, c);
  assert.equal(ra.status, 401);
  assert.equal(ra.body.fileKey, undefined);
  const listed = await sb.runAsync(["service", "cert", "list-revoked"], {
    TENSORSEAL_SERVICE_DB: tdb.url,
  });
  assert.equal(listed.status, 0, listed.stderr);
  assert.deepEqual(
    JSON.parse(listed.stdout).map((x: { fingerprint: string; reason: string }) => [
      x.fingerprint,
      x.reason,
    ]),
    [[c.fingerprint, "key leaked"]],
  );
  assert.equal(await new RevokedCertRepo(db).revoke(c.fingerprint), false, "already revoked");
});

test("CLI: service cert issue (dev CA), then seal -r service:m and open with only CERT/KEY", async () => {
  const issued = await sb.runAsync(["service", "cert", "issue", "--spiffe-id", ROLED, "-o", "id"]);
  assert.equal(issued.status, 0, issued.stderr);
  assert.match(issued.stdout, /^[0-9a-f]{64}\n$/);
  const env = {
    TENSORSEAL_SERVER: urlA,
    TENSORSEAL_SERVER_CA: join(sb.env.TENSORSEAL_HOME!, "service-dev", "ca.pem"),
    TENSORSEAL_SERVER_CERT: join(sb.dir, "id", "client.pem"),
    TENSORSEAL_SERVER_KEY: join(sb.dir, "id", "client.key"),
  };
  const data = randomBytes(50_000);
  writeFileSync(join(sb.dir, "w.bin"), data);
  const s = await sb.runAsync(["seal", "w.bin", "-r", "service:m", "-o", "w.tseal"], env);
  assert.equal(s.status, 0, s.stderr);
  const o = await sb.runAsync(["open", "w.tseal", "-o", "w.out"], env);
  assert.equal(o.status, 0, o.stderr);
  assert.deepEqual(readFileSync(join(sb.dir, "w.out")), data);
  const e = await lastAuditEntry<AuditEntryView>(db);
  assert.equal(e.principal, ROLED);
  // A bad identity is refused before anything is written; without the dev CA, issue refuses.
  const bad = await sb.runAsync([
    "service",
    "cert",
    "issue",
    "--spiffe-id",
    "spiffe://x/a/..",
    "-o",
    "z",
  ]);
  assert.equal(bad.status, 2, bad.stderr);
  const noCa = await sb.runAsync(["service", "cert", "issue", "--spiffe-id", ROLED, "-o", "z"], {
    TENSORSEAL_HOME: join(sb.dir, "empty"),
  });
  assert.equal(noCa.status, 2);
  assert.match(noCa.stderr, /no development CA/);
  // Half a client identity is a usage error, not a silent token-less request.
  const half = await sb.runAsync(["open", "w.tseal", "-o", "w2.out"], {
    ...env,
    TENSORSEAL_SERVER_KEY: "",
  });
  assert.notEqual(half.status, 0);
});
