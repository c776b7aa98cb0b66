/**
 * mTLS on PostgreSQL: two service replicas listening over TLS (dev CA, `tls.clientCa`) on one
 * schema. An mTLS principal's unwrap on either replica is audited exactly once in the shared
 * chain (found by its `x-request-id`); a certificate revoked by fingerprint — with the
 * `service cert revoke` CLI, or the repo through the other replica's database — is refused
 * (401, no key, audited as `cert:<fp>`) by both replicas once their 300 ms cache window has
 * passed; the chain verifies. mtls.test.ts has the full refusal table on SQLite.
 */
import assert from "node:assert/strict";
import { request } from "node:https";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import {
  Authorizer,
  type Database,
  DEFAULT_POLICIES,
  type DevCa,
  type IssuedCert,
  issueClientCert,
  RevokedCertRepo,
  verifyAuditLog,
} from "../../src/service/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import {
  auditEntries,
  devMtls,
  keyAndDataKey,
  pgDb,
  server,
  type TestDb,
  token,
} from "./helpers.js";
import { auditRequestIds } from "./load.js";

const TD = "prod.example";
const LOADER = `spiffe://${TD}/ns/ml/sa/loader`;
const CACHE_MS = 300;
const POLICIES = {
  ...DEFAULT_POLICIES,
  "loader-unwraps": `permit (principal, action == TensorSeal::Action::"unwrap", resource == TensorSeal::Key::"m")
    when { context.workload has spiffeId && context.workload.spiffeId == "${LOADER}" };`,
};

interface Reply {
  status: number;
  id: string;
  body: Record<string, unknown>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t = await pgDb();

describe("mTLS on PostgreSQL, two replicas", { skip: typeof t === "string" ? t : false }, () => {
  const tdb = t as TestDb;
  let sb: Sandbox;
  let caPem: string;
  let ca: DevCa;
  let dbA: Database;
  let dbB: Database;
  let a: FastifyInstance;
  let b: FastifyInstance;
  let urlA: string;
  let urlB: string;
  let stanza: unknown;
  let fileKey: string;

  /** POST /v1/datakeys/unwrap with a client certificate; a fresh connection each time. */
  function unwrap(url: string, c: IssuedCert): Promise<Reply> {
    return new Promise((ok, fail) => {
      const req = request(new URL("/v1/datakeys/unwrap", url), {
        method: "POST",
        ca: caPem,
        cert: c.cert,
        key: c.key,
        agent: false,
        headers: { "content-type": "application/json" },
      });
      req.on("error", fail);
      req.on("response", (res) => {
        let s = "";
        res.setEncoding("utf8");
        res.on("data", (d) => {
          s += d;
        });
        res.on("end", () =>
          ok({
            status: res.statusCode ?? 0,
            id: String(res.headers["x-request-id"]),
            body: JSON.parse(s),
          }),
        );
      });
      req.end(JSON.stringify({ stanza }));
    });
  }

  /** The audit entries carrying `requestId`, parsed. */
  async function entriesOf(requestId: string): Promise<Record<string, unknown>[]> {
    return (await auditEntries(dbB)).filter((e) => e.requestId === requestId);
  }

  async function assertRevoked(url: string, c: IssuedCert, why: string) {
    const r = await unwrap(url, c);
    assert.equal(r.status, 401, `${why}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.fileKey, undefined);
    const es = await entriesOf(r.id);
    assert.equal(es.length, 1, why);
    assert.equal(es[0]!.outcome, "denied");
    assert.equal(es[0]!.principal, `cert:${c.fingerprint}`);
    assert.match(String(es[0]!.reason), /revoked \(service cert revoke\)/);
  }

  before(async () => {
    sb = sandbox();
    const m = await devMtls(sb.env.TENSORSEAL_HOME!);
    const dev = m.dev;
    ({ ca, caPem } = m);
    const opts = {
      tls: { ...dev, clientCa: caPem },
      mtls: { trustDomains: [TD], revocationCacheMs: CACHE_MS },
      authorizer: Authorizer.fromPolicies(POLICIES, "mtls pg test"),
      sweepEveryMs: 0,
    };
    dbA = await tdb.open();
    dbB = await tdb.open();
    a = await server(dbA, opts);
    b = await server(dbB, opts);
    const admin = await token(dbA, "admin,wrap");
    ({ stanza, fileKey } = await keyAndDataKey(a, admin, "m", b));
    urlA = await a.listen({ host: "127.0.0.1", port: 0 });
    urlB = await b.listen({ host: "127.0.0.1", port: 0 });
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await dbA?.close();
    await dbB?.close();
    await tdb.drop();
    sb?.cleanup();
  });

  test("an mTLS principal's unwrap on either replica is audited once in the shared chain", async () => {
    const c = issueClientCert(ca, { uris: [LOADER] });
    const ids: string[] = [];
    for (const url of [urlA, urlB, urlA, urlB]) {
      const r = await unwrap(url, c);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.fileKey, fileKey);
      const es = await entriesOf(r.id);
      assert.equal(es.length, 1, `request ${r.id} audited once`);
      assert.equal(es[0]!.action, "datakeys.unwrap");
      assert.equal(es[0]!.outcome, "allowed");
      assert.equal(es[0]!.principal, LOADER);
      assert.deepEqual((es[0]!.authz as { policies: string[] }).policies, ["loader-unwraps"]);
      ids.push(r.id);
    }
    assert.equal(new Set(ids).size, ids.length, "replicas never hand out the same request id");
    const v = await verifyAuditLog(dbA, { publicKey: b.tensorseal.auditPublicKey });
    assert.deepEqual(v.problems, []);
    assert.ok(v.ok);
  });

  test("revoked by fingerprint (CLI, or the repo via the other replica): refused by both within the cache window", async () => {
    const viaCli = issueClientCert(ca, { uris: [LOADER] });
    const viaRepo = issueClientCert(ca, { uris: [LOADER] });
    // Both replicas have looked each certificate up: "not revoked" is cached on both.
    for (const c of [viaCli, viaRepo])
      for (const url of [urlA, urlB]) assert.equal((await unwrap(url, c)).status, 200);

    const t0 = Date.now();
    const out = await sb.runAsync(
      ["service", "cert", "revoke", viaCli.fingerprint, "--reason", "key leaked"],
      { TENSORSEAL_SERVICE_DB: tdb.url },
    );
    assert.equal(out.status, 0, out.stderr);
    assert.equal(await new RevokedCertRepo(dbB).revoke(viaRepo.fingerprint, "rotated"), true);
    // Within the window a replica may still serve its cached answer; after it, neither does.
    const waited = Date.now() - t0;
    if (waited < CACHE_MS + 50) await sleep(CACHE_MS + 50 - waited);
    for (const c of [viaCli, viaRepo]) {
      await assertRevoked(urlA, c, "replica A");
      await assertRevoked(urlB, c, "replica B");
    }
    // A certificate of the same SPIFFE ID that was not revoked still works on both.
    const fresh = issueClientCert(ca, { uris: [LOADER] });
    for (const url of [urlA, urlB]) assert.equal((await unwrap(url, fresh)).status, 200);

    const v = await verifyAuditLog(dbB, { publicKey: a.tensorseal.auditPublicKey });
    assert.deepEqual(v.problems, []);
    const ids = await auditRequestIds(dbA);
    assert.equal(new Set(ids.map((e) => e.id)).size, ids.length, "no request id twice");
  });
});
