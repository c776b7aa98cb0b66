/**
 * A flood of unauthenticated requests: each is refused (401), but only a per-source budget is
 * audited one by one; the rest become one `auth.refusals` summary per source whose counts add
 * up to the flood, so the log stays small and the flood stays on record (and in metrics).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { verifyAuditLog } from "../../src/service/index.js";
import { bearer, server, sqliteDb, token } from "./helpers.js";

interface Entry {
  action: string;
  outcome: string;
  status: number;
  source: string;
  principal: string | null;
  resource?: { suppressed?: number; reasons?: Record<string, number> };
}

test("a flood of 401s writes a budget of entries per source and summaries that count every refusal", async () => {
  const tdb = sqliteDb();
  const db = await tdb.open();
  let clock = Date.parse("2026-01-01T00:00:00Z");
  const app = await server(db, {
    now: () => clock,
    refusalLimit: { burst: 5, perMinute: 60 },
  });
  const admin = await token(db, "admin");
  const flood: [string, number][] = [
    ["10.0.0.1", 200],
    ["10.0.0.2", 30],
  ];
  for (const [source, n] of flood) {
    for (let i = 0; i < n; i++) {
      // Half with an unknown token, half with none: both are anonymous refusals.
      const headers = i % 2 === 0 ? bearer(`tsk_${"x".repeat(43)}`) : {};
      const r = await app.inject({
        method: "POST",
        url: "/v1/datakeys/unwrap",
        headers,
        payload: {},
        remoteAddress: source,
      });
      assert.equal(r.statusCode, 401);
    }
  }
  // An authenticated request from the flooding address is still served and audited.
  const ok = await app.inject({
    method: "GET",
    url: "/v1/keys",
    headers: bearer(admin),
    remoteAddress: "10.0.0.1",
  });
  assert.equal(ok.statusCode, 200);
  const metrics = (await app.inject({ method: "GET", url: "/metrics" })).body;
  assert.match(metrics, /tensorseal_auth_refusals_total\{audited="true"\} 10\n/);
  assert.match(metrics, /tensorseal_auth_refusals_total\{audited="false"\} 220\n/);
  // A minute later the budget has refilled: the next refusal is audited on its own again.
  clock += 60_000;
  await app.inject({ method: "GET", url: "/v1/keys", remoteAddress: "10.0.0.1" });
  await app.close(); // writes the summaries due

  const entries = (await db.db.selectFrom("audit").select("entry").orderBy("seq").execute()).map(
    (r) => JSON.parse(r.entry) as Entry,
  );
  const singles = entries.filter((e) => e.status === 401 && e.action !== "auth.refusals");
  const summaries = entries.filter((e) => e.action === "auth.refusals");
  assert.ok(entries.length < 40, `${entries.length} entries for a flood of 231`);
  for (const [source, n] of flood) {
    const one = singles.filter((e) => e.source === source).length;
    const sum = summaries.filter((e) => e.source === source);
    assert.equal(sum.length, 1, source);
    const s = sum[0]!;
    assert.equal(s.outcome, "denied");
    assert.equal(s.principal, null);
    // Every refusal is on record: one by one within the budget, counted in the summary beyond.
    assert.equal(one + s.resource!.suppressed!, n + (source === "10.0.0.1" ? 1 : 0), source);
    assert.equal(one, source === "10.0.0.1" ? 6 : 5);
    const reasons = Object.values(s.resource!.reasons!).reduce((a, b) => a + b, 0);
    assert.equal(reasons, s.resource!.suppressed);
  }
  assert.ok(!JSON.stringify(entries).includes("x".repeat(43)), "no token in the audit");
  assert.deepEqual((await verifyAuditLog(db)).problems, []);
  await db.close();
  await tdb.drop();
});

test("refusals from more sources than tracked share one budget and one summary", async () => {
  const tdb = sqliteDb();
  const db = await tdb.open();
  const app = await server(db, { now: () => 0, refusalLimit: { burst: 1, maxSources: 3 } });
  for (let i = 0; i < 50; i++) {
    const r = await app.inject({ method: "GET", url: "/v1/keys", remoteAddress: `10.1.0.${i}` });
    assert.equal(r.statusCode, 401);
  }
  await app.close();
  const entries = (await db.db.selectFrom("audit").select("entry").execute()).map(
    (r) => JSON.parse(r.entry) as Entry,
  );
  const summaries = entries.filter((e) => e.action === "auth.refusals");
  assert.deepEqual(
    summaries.map((e) => [e.source, e.resource?.suppressed]),
    [["*", 46]],
  );
  assert.equal(entries.filter((e) => e.action !== "auth.refusals").length, 4);
  await db.close();
  await tdb.drop();
});
