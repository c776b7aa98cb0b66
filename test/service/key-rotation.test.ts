/**
 * Rotation periods of service keys (SQLite and PostgreSQL): PATCH sets, clears and validates
 * `rotationPeriod`; listings show it with `rotationDue`; POST /v1/rotate-due rotates exactly
 * the keys whose primary has reached its period, each decided as keys:rotate and audited; a
 * non-admin and a policy forbidding one due key are refused (403, audited, nothing rotated).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { Authorizer, DEFAULT_POLICIES } from "../../src/service/index.js";
import { describeEachDb, inject, server, token } from "./helpers.js";

const DAY_S = 86_400;

describeEachDb("service key rotation periods", (suite) => {
  let app: FastifyInstance;
  let admin: string;
  let user: string;
  /** Offset added to the real clock: key versions are created at real time. */
  let skew = 0;

  const req = (method: "POST" | "PATCH" | "GET", url: string, t: string, payload?: unknown) =>
    inject(app, method, url, t, payload);
  const entries = async () =>
    (await suite.db.db.selectFrom("audit").select("entry").orderBy("seq").execute()).map((r) =>
      JSON.parse(r.entry),
    );
  const listed = async () => {
    const r = await req("GET", "/v1/keys", admin);
    assert.equal(r.statusCode, 200, r.body);
    return new Map((r.json().keys as { name: string }[]).map((k) => [k.name, k as never])) as Map<
      string,
      { primaryVersion: number; rotationPeriod: number | null; rotationDue: string | null }
    >;
  };

  before(async () => {
    if (suite.skip) return;
    // A policy forbidding keys:rotate on one key (restricted), next to the default set.
    const policies = {
      ...DEFAULT_POLICIES,
      "no-rotate-frozen": `forbid (principal, action == TensorSeal::Action::"keys:rotate", resource) when { resource.sensitivity == "restricted" };`,
    };
    app = await server(suite.db, {
      now: () => Date.now() + skew,
      sweepEveryMs: 0,
      authorizer: Authorizer.fromPolicies(policies, "test"),
    });
    admin = await token(suite.db, "admin");
    user = await token(suite.db, "wrap,unwrap");
    for (const name of ["daily", "monthly", "none", "frozen"])
      assert.equal((await req("POST", "/v1/keys", admin, { name })).statusCode, 200);
  });
  after(async () => {
    if (suite.skip) return;
    await app.close();
  });

  test("PATCH sets, clears and validates rotationPeriod; listings show the due date", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const p = await req("PATCH", "/v1/keys/daily", admin, { rotationPeriod: DAY_S });
    assert.equal(p.statusCode, 200, p.body);
    assert.equal(p.json().rotationPeriod, DAY_S);
    const created = Date.parse(p.json().versions[0].created);
    assert.equal(Date.parse(p.json().rotationDue), created + DAY_S * 1000);
    for (const bad of [0, -5, 1.5, "90d", 3_153_600_001, true]) {
      const r = await req("PATCH", "/v1/keys/monthly", admin, { rotationPeriod: bad });
      assert.equal(r.statusCode, 400, `rotationPeriod ${JSON.stringify(bad)}: ${r.body}`);
    }
    assert.equal((await listed()).get("monthly")?.rotationPeriod, null);
    const m = await req("PATCH", "/v1/keys/monthly", admin, { rotationPeriod: 30 * DAY_S });
    assert.equal(m.statusCode, 200, m.body);
    // Cleared with null; set again.
    const c = await req("PATCH", "/v1/keys/monthly", admin, { rotationPeriod: null });
    assert.equal(c.json().rotationPeriod, null);
    assert.equal(c.json().rotationDue, null);
    await req("PATCH", "/v1/keys/monthly", admin, { rotationPeriod: 30 * DAY_S });
    const one = await req("GET", "/v1/keys/monthly", admin);
    assert.equal(one.statusCode, 200, one.body);
    assert.equal(one.json().rotationPeriod, 30 * DAY_S);
    assert.equal(
      Date.parse(one.json().rotationDue),
      Date.parse(one.json().versions[0].created) + 30 * DAY_S * 1000,
    );
    assert.equal((await req("GET", "/v1/keys/nosuch", admin)).statusCode, 404);
    assert.equal((await req("GET", "/v1/keys/monthly", user)).statusCode, 403);
    const l = await listed();
    assert.equal(l.get("monthly")?.rotationPeriod, 30 * DAY_S);
    assert.equal(l.get("none")?.rotationPeriod, null);
    assert.equal(l.get("none")?.rotationDue, null);
    const e = (await entries()).filter((x) => x.action === "keys.update").at(-1);
    assert.equal(e.resource.rotationPeriod, 30 * DAY_S);
  });

  test("rotate-due rotates exactly the overdue keys, each audited as keys.rotate", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    // Nothing due now.
    const none = await req("POST", "/v1/rotate-due", admin);
    assert.equal(none.statusCode, 200, none.body);
    assert.deepEqual(none.json().rotated, []);
    // Two days on: daily (1 day) is due, monthly (30 days) and none are not.
    skew = 2 * DAY_S * 1000;
    const before = (await entries()).length;
    const r = await req("POST", "/v1/rotate-due", admin);
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(r.json().rotated, ["daily"]);
    const l = await listed();
    assert.equal(l.get("daily")?.primaryVersion, 2);
    assert.equal(l.get("monthly")?.primaryVersion, 1);
    assert.equal(l.get("none")?.primaryVersion, 1);
    const added = (await entries()).slice(before);
    const rot = added.filter((x) => x.action === "keys.rotate");
    assert.equal(rot.length, 1);
    assert.equal(rot[0].resource.key, "daily");
    assert.equal(rot[0].resource.version, 2);
    assert.equal(rot[0].outcome, "allowed");
    assert.ok(rot[0].authz.policies.includes("default:keys:rotate"), JSON.stringify(rot[0]));
    const own = added.find((x) => x.action === "keys.rotate-due");
    assert.deepEqual(own.resource.rotated, ["daily"]);
    assert.equal(rot[0].requestId, `${own.requestId}:daily`);
    // 31 days on: monthly too, and daily's new primary (created now) is 31 days old as well.
    skew = 31 * DAY_S * 1000;
    const r2 = await req("POST", "/v1/rotate-due", admin);
    assert.deepEqual(r2.json().rotated, ["daily", "monthly"]);
    skew = 0;
    assert.deepEqual((await req("POST", "/v1/rotate-due", admin)).json().rotated, []);
  });

  test("a non-admin is refused (403, audited); a policy forbidding one due key rotates none", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const u = await req("POST", "/v1/rotate-due", user);
    assert.equal(u.statusCode, 403, u.body);
    const denied = (await entries()).at(-1);
    assert.equal(denied.action, "keys.rotate-due");
    assert.equal(denied.outcome, "denied");
    await req("PATCH", "/v1/keys/frozen", admin, {
      sensitivity: "restricted",
      rotationPeriod: DAY_S,
    });
    skew = 2 * DAY_S * 1000;
    const before = await listed();
    const r = await req("POST", "/v1/rotate-due", admin);
    assert.equal(r.statusCode, 403, r.body);
    assert.match(r.json().message, /no-rotate-frozen/);
    const after = await listed();
    for (const [name, k] of before) assert.equal(after.get(name)?.primaryVersion, k.primaryVersion);
    const e = (await entries()).filter((x) => x.action === "keys.rotate-due").at(-1);
    assert.equal(e.outcome, "denied");
    assert.deepEqual(e.authz, { decision: "deny", policies: ["no-rotate-frozen"] });
    // Without a period the key is not due, and the others rotate.
    await req("PATCH", "/v1/keys/frozen", admin, { rotationPeriod: null });
    const ok = await req("POST", "/v1/rotate-due", admin);
    // daily (1 day) is due again; monthly's primary, created by the last test, is not.
    assert.deepEqual(ok.json().rotated, ["daily"]);
    skew = 0;
  });
});
