/**
 * Anomaly detection (docs/SERVICE.md, "Anomaly detection and alerts"): rate jumps against the
 * baseline, first-seen clients (also after a restart and across replicas on PostgreSQL),
 * alerts in the audit log and at a loopback webhook (HMAC checked here with node:crypto),
 * a webhook that is down, auto-block and unblock. The clock is injected (`now`).
 */
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, afterEach, describe, test } from "node:test";
import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  type AnomalyOptions,
  type Authenticator,
  checkWebhookUrl,
  type Database,
  StaticTokenAuthenticator,
  TokenRepo,
  verifyAuditLog,
} from "../../src/service/index.js";
import { auditEntries, bearer, pgDb, server, sqliteDb, type TestDb, token } from "./helpers.js";

const SECRET = randomBytes(32);
const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);

interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A loopback webhook receiver; `plan` answers attempt n ("hang" never answers). */
async function receiver(plan: (n: number) => number | "hang" = () => 200) {
  const got: Delivery[] = [];
  const srv: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      const a = plan(got.length);
      if (a === "hang") return;
      res.writeHead(a).end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`;
  return {
    url,
    got,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

function validSignature(d: Delivery): boolean {
  const want = `sha256=${createHmac("sha256", SECRET).update(d.body).digest("hex")}`;
  return d.headers["x-tensorseal-signature"] === want;
}

/** Test principals from headers (any workload id), before the static tokens. */
const headerAuth: Authenticator = {
  async authenticate(req: FastifyRequest) {
    const id = req.headers["x-test-principal"];
    if (typeof id !== "string") return null;
    const wl = String(req.headers["x-test-workload"] ?? "wl-1");
    return {
      id: `jwt:${id}`,
      kind: "jwt",
      roles: ["unwrap", "wrap"],
      workload: { kind: "kubernetes", id: wl },
    };
  },
};

interface Env {
  db: Database;
  app: FastifyInstance;
  admin: string;
  user: string;
  userId: string;
  stanza: unknown;
  clock: { t: number };
}

async function setup(
  db: Database,
  anomaly: AnomalyOptions | undefined,
  clock = { t: T0 },
  extra: Record<string, unknown> = {},
): Promise<Env> {
  const app = await server(db, {
    sweepEveryMs: 0,
    now: () => clock.t,
    authenticators: [headerAuth, new StaticTokenAuthenticator(new TokenRepo(db), randomBytes(32))],
    ...(anomaly ? { anomaly } : {}),
    ...extra,
  });
  const admin = await token(db, "admin,wrap");
  const u = await new TokenRepo(db).create(["unwrap"]);
  const k = await app.inject({
    method: "POST",
    url: "/v1/keys",
    headers: bearer(admin),
    payload: { name: "m" },
  });
  assert.ok(k.statusCode === 200 || k.statusCode === 409, k.body);
  const g = await app.inject({
    method: "POST",
    url: "/v1/datakeys/generate",
    headers: bearer(admin),
    payload: { key: "m" },
  });
  assert.equal(g.statusCode, 200, g.body);
  return { db, app, admin, user: u.token, userId: `token:${u.id}`, stanza: g.json().stanza, clock };
}

function unwrap(e: Env, t = e.user, remoteAddress = "127.0.0.1") {
  return e.app.inject({
    method: "POST",
    url: "/v1/datakeys/unwrap",
    headers: bearer(t),
    payload: { stanza: e.stanza },
    remoteAddress,
  });
}

async function alerts(db: Database, action: string, principal?: string) {
  return (await auditEntries(db)).filter(
    (x) => x.action === action && (principal === undefined || x.principal === principal),
  );
}

async function verifies(e: Env): Promise<void> {
  const v = await verifyAuditLog(e.db, { publicKey: e.app.tensorseal.auditPublicKey });
  assert.deepEqual(v.problems, []);
  assert.ok(v.ok);
}

/** `n` unwraps per minute for `minutes` minutes (the clock moves on one minute each). */
async function steady(e: Env, n: number, minutes: number): Promise<void> {
  for (let m = 0; m < minutes; m++) {
    for (let i = 0; i < n; i++) assert.equal((await unwrap(e)).statusCode, 200);
    e.clock.t += 60_000;
  }
}

const RATE = { warmupMinutes: 3, minRate: 20, rateFactor: 10 } as const;

describe("anomaly detection (sqlite)", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });
  const fresh = async () => {
    const tdb = sqliteDb();
    const db = await tdb.open();
    cleanup.push(async () => {
      await db.close();
      await tdb.drop();
    });
    return db;
  };
  const started = async (...a: Parameters<typeof setup>) => {
    const e = await setup(...a);
    cleanup.push(() => e.app.close());
    return e;
  };

  test("a steady principal does not alert; a 10x jump alerts once, in the audit and signed at the webhook", async () => {
    const hook = await receiver();
    cleanup.push(hook.close);
    const e = await started(await fresh(), {
      ...RATE,
      firstSeen: false,
      webhook: { url: hook.url, secret: SECRET },
    });
    await steady(e, 5, 6);
    // A quiet principal's burst under the minimum does not alert either.
    const quiet = await token(e.db, "unwrap");
    for (let i = 0; i < 15; i++) assert.equal((await unwrap(e, quiet)).statusCode, 200);
    assert.equal((await alerts(e.db, "alert.rate")).length, 0);
    // 60 in one minute against a baseline of 5: one alert when the count passes 50, not 10.
    for (let i = 0; i < 60; i++) assert.equal((await unwrap(e)).statusCode, 200);
    const rate = await alerts(e.db, "alert.rate");
    assert.equal(rate.length, 1);
    const a = rate[0]!;
    assert.equal(a.outcome, "alert");
    assert.equal(a.principal, e.userId);
    const r = a.resource as Record<string, unknown>;
    assert.equal(r.windowCount, 51);
    assert.equal(r.baseline, 5);
    assert.equal(r.factor, 10);
    assert.ok(await e.app.tensorseal.drainAlerts(5000));
    assert.equal(hook.got.length, 1);
    const d = hook.got[0]!;
    assert.ok(validSignature(d), "the webhook signature verifies");
    assert.ok(!validSignature({ ...d, body: d.body.replace("51", "52") }));
    const body = JSON.parse(d.body);
    assert.equal(body.kind, "rate");
    assert.equal(body.principal, e.userId);
    assert.equal(body.details.windowCount, 51);
    assert.equal(body.id, r.alert);
    assert.equal(d.headers["x-tensorseal-alert-id"], body.id);
    assert.ok(!d.body.includes(e.user) && !JSON.stringify(a).includes(e.user), "no token");
    // The next minute starts a new window: no alert at a normal rate.
    e.clock.t += 60_000;
    await steady(e, 5, 1);
    assert.equal((await alerts(e.db, "alert.rate")).length, 1);
    const m = await e.app.inject({ method: "GET", url: "/metrics" });
    assert.match(m.body, /tensorseal_anomaly_alerts_total\{kind="rate"\} 1/);
    assert.match(m.body, /tensorseal_alert_webhook_deliveries_total\{outcome="ok"\} 1/);
    await verifies(e);
  });

  test("batch unwraps count per key", async () => {
    const e = await started(await fresh(), { ...RATE, warmupMinutes: 0, firstSeen: false });
    const batch = (n: number) =>
      e.app.inject({
        method: "POST",
        url: "/v1/datakeys/unwrap-batch",
        headers: bearer(e.user),
        payload: { stanzas: Array(n).fill(e.stanza) },
      });
    assert.equal((await batch(19)).statusCode, 200);
    assert.equal((await alerts(e.db, "alert.rate")).length, 0);
    assert.equal((await batch(1)).statusCode, 200); // 20 keys: the minimum, no baseline yet
    assert.equal((await alerts(e.db, "alert.rate")).length, 1);
  });

  test("first-seen principal, address and workload alert; known ones do not, also after a restart", async () => {
    const hook = await receiver();
    cleanup.push(hook.close);
    const db = await fresh();
    const opts: AnomalyOptions = { webhook: { url: hook.url, secret: SECRET } };
    let e = await setup(db, opts);
    cleanup.push(() => e.app.close()); // whichever server is current
    const as = (wl: string, ip = "10.0.0.1") =>
      e.app.inject({
        method: "POST",
        url: "/v1/datakeys/unwrap",
        headers: { "x-test-principal": "alice", "x-test-workload": wl },
        payload: { stanza: e.stanza },
        remoteAddress: ip,
      });
    const fs = () => alerts(db, "alert.first-seen", "jwt:alice");
    assert.equal((await as("wl-1")).statusCode, 200);
    let seen = await fs();
    assert.equal(seen.length, 1);
    assert.deepEqual((seen[0]!.resource as { new: string[] }).new, ["principal"]);
    assert.equal(seen[0]!.reason, "first-seen principal");
    assert.equal((await as("wl-1")).statusCode, 200);
    assert.equal((await fs()).length, 1, "a known client does not alert");
    assert.equal((await as("wl-1", "10.0.0.2")).statusCode, 200);
    assert.equal((await as("wl-2", "10.0.0.2")).statusCode, 200);
    seen = await fs();
    assert.equal(seen.length, 3);
    assert.deepEqual((seen[1]!.resource as { new: string[] }).new, ["source"]);
    assert.deepEqual((seen[2]!.resource as { new: string[] }).new, ["workload"]);
    assert.deepEqual((seen[2]!.resource as { client: unknown }).client, {
      source: "10.0.0.2",
      workload: "wl-2",
    });
    // A new combination of known parts is recorded without an alert.
    assert.equal((await as("wl-2", "10.0.0.1")).statusCode, 200);
    assert.equal((await fs()).length, 3);
    // The alert entry precedes the request's own entry.
    const all = await auditEntries(db);
    const i = all.findIndex((x) => x.action === "alert.first-seen" && x.principal === "jwt:alice");
    assert.equal(all[i + 1]!.action, "datakeys.unwrap");
    assert.equal(all[i + 1]!.requestId, all[i]!.requestId);
    assert.ok(await e.app.tensorseal.drainAlerts(5000));
    const kinds = hook.got
      .map((d) => JSON.parse(d.body))
      .filter((b) => b.principal === "jwt:alice");
    assert.equal(kinds.length, 3);
    assert.ok(hook.got.every(validSignature));

    // Restart on the same database: known clients stay known; a new address still alerts.
    await e.app.close();
    e = await setup(db, opts);
    for (const [wl, ip] of [
      ["wl-1", "10.0.0.1"],
      ["wl-2", "10.0.0.2"],
      ["wl-2", "10.0.0.1"],
    ] as const)
      assert.equal((await as(wl, ip)).statusCode, 200);
    assert.equal((await fs()).length, 3);
    assert.equal((await as("wl-1", "10.0.0.3")).statusCode, 200);
    assert.equal((await fs()).length, 4);
    await verifies(e);
  });

  test("first-seen principal alerts can be turned off", async () => {
    const e = await started(await fresh(), { firstSeenPrincipal: false });
    assert.equal((await unwrap(e)).statusCode, 200);
    assert.equal((await alerts(e.db, "alert.first-seen", e.userId)).length, 0);
    assert.equal((await unwrap(e, e.user, "10.9.9.9")).statusCode, 200);
    assert.equal((await alerts(e.db, "alert.first-seen", e.userId)).length, 1);
  });

  test("a webhook that is down neither fails nor slows unwraps, and is retried", async () => {
    // The first attempt hangs past the timeout, the second gets 503, later ones succeed.
    const hook = await receiver((n) => (n === 1 ? "hang" : n === 2 ? 503 : 200));
    cleanup.push(hook.close);
    const e = await started(await fresh(), {
      webhook: { url: hook.url, secret: SECRET, timeoutMs: 1500, backoffMs: 50 },
    });
    // The admin's first-seen alert (setup) is on its first, hanging attempt by now.
    const t0 = performance.now();
    const r = await unwrap(e, e.user, "10.1.1.1"); // first-seen: one more alert queued
    const ms = performance.now() - t0;
    assert.equal(r.statusCode, 200);
    assert.ok(ms < 700, `unwrap took ${ms} ms with the webhook hanging`);
    for (let i = 0; i < 20; i++)
      assert.equal((await unwrap(e, e.user, "10.1.1.1")).statusCode, 200);
    assert.ok(await e.app.tensorseal.drainAlerts(10_000));
    const ids = hook.got.map((d) => String(d.headers["x-tensorseal-alert-id"]));
    assert.equal(ids.length, 4, "3 attempts for the first alert, 1 for the second");
    assert.equal(new Set(ids.slice(0, 3)).size, 1);
    const audited = (await auditEntries(e.db)).filter((x) => x.outcome === "alert");
    assert.deepEqual(
      [...new Set(ids)],
      audited.map((x) => (x.resource as { alert: string }).alert),
      "every audited alert delivered, in order",
    );
    assert.ok(hook.got.every(validSignature));
    const m = await e.app.inject({ method: "GET", url: "/metrics" });
    assert.match(m.body, /tensorseal_alert_webhook_deliveries_total\{outcome="retry"\} [2-9]/);
  });

  test("the webhook refuses plain http to a non-loopback host", () => {
    assert.throws(() => checkWebhookUrl("http://alerts.example.com/x"), /https/);
    assert.throws(() => checkWebhookUrl("http://10.0.0.1/x"), /https/);
    assert.throws(() => checkWebhookUrl("https://u:p@alerts.example.com/"), /credentials/);
    assert.equal(checkWebhookUrl("https://alerts.example.com/x").hostname, "alerts.example.com");
    assert.equal(checkWebhookUrl("http://127.0.0.1:9/x").port, "9");
    assert.equal(checkWebhookUrl("http://[::1]:9/x").port, "9");
  });

  test("auto-block: after the alert unwraps are 403 and audited; a non-admin cannot unblock; admin unblock restores", async () => {
    const e = await started(await fresh(), { ...RATE, firstSeen: false, autoBlock: true });
    await steady(e, 2, 4);
    let status = 200;
    let n = 0;
    while (status === 200 && n < 100) {
      status = (await unwrap(e)).statusCode;
      n++;
    }
    assert.equal(status, 403, "blocked after the alert");
    assert.equal(n, 22, "the request that crossed the threshold was served, the next refused");
    const rate = await alerts(e.db, "alert.rate");
    assert.equal(rate.length, 1);
    assert.equal((rate[0]!.resource as { blocked?: boolean }).blocked, true);
    const last = (await auditEntries(e.db)).at(-1)!;
    assert.equal(last.action, "datakeys.unwrap");
    assert.equal(last.outcome, "denied");
    assert.equal(last.principal, e.userId);
    assert.match(String(last.reason), /blocked by anomaly detection/);
    // The block holds on every route, and past the cache window (it is in the database).
    e.clock.t += 10 * 60_000;
    assert.equal((await unwrap(e)).statusCode, 403);

    const list = await e.app.inject({
      method: "GET",
      url: "/v1/principals/blocked",
      headers: bearer(e.admin),
    });
    assert.equal(list.statusCode, 200, list.body);
    assert.deepEqual(
      list.json().blocked.map((b: { principal: string }) => b.principal),
      [e.userId],
    );
    const unblock = (t: string, id = e.userId) =>
      e.app.inject({
        method: "POST",
        url: `/v1/principals/${encodeURIComponent(id)}/unblock`,
        headers: bearer(t),
        payload: {},
      });
    const other = await token(e.db, "unwrap,wrap,audit");
    const denied = await unblock(other);
    assert.equal(denied.statusCode, 403);
    const d = (await auditEntries(e.db)).at(-1)!;
    assert.equal(d.action, "principals.unblock");
    assert.equal(d.outcome, "denied");
    assert.equal((d.authz as { decision: string }).decision, "deny");
    assert.equal((await unwrap(e)).statusCode, 403);

    const ok = await unblock(e.admin);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json(), { principal: e.userId, unblocked: true });
    const u = (await auditEntries(e.db)).at(-1)!;
    assert.equal(u.action, "principals.unblock");
    assert.equal(u.outcome, "allowed");
    assert.deepEqual(u.resource, { principal: e.userId });
    assert.equal((await unwrap(e)).statusCode, 200);
    assert.equal((await unblock(e.admin)).statusCode, 404, "no longer blocked");
    const m = await e.app.inject({ method: "GET", url: "/metrics" });
    assert.match(m.body, /tensorseal_anomaly_blocks_total 1/);
    assert.match(m.body, /tensorseal_anomaly_blocked_requests_total 3/);
    await verifies(e);
  });

  test("without detection no alert is written, but blocks in the database are enforced", async () => {
    const db = await fresh();
    const e = await started(db, undefined);
    assert.equal((await unwrap(e)).statusCode, 200);
    assert.equal((await auditEntries(db)).filter((x) => x.outcome === "alert").length, 0);
    await db.db
      .insertInto("anomaly_blocks")
      .values({ principal: e.userId, since: new Date(T0).toISOString(), reason: "test" })
      .execute();
    e.clock.t += 2000; // the cached blocked set expires
    assert.equal((await unwrap(e)).statusCode, 403);
  });
});

describe("anomaly detection (postgres): two servers share first-seen clients and blocks", () => {
  let tdb: TestDb | string;
  after(async () => {
    if (typeof tdb !== "string") await tdb.drop();
  });

  test("first-seen and block on one server hold on the other", async (t) => {
    tdb = await pgDb();
    if (typeof tdb === "string") return t.skip(tdb);
    const dbA = await tdb.open();
    const dbB = await tdb.open();
    const clock = { t: T0 };
    const opts: AnomalyOptions = { warmupMinutes: 0, minRate: 5, autoBlock: true };
    const a = await setup(dbA, opts, clock);
    const b = await setup(dbB, opts, clock);
    try {
      // The first request of a principal, on A: one alert; the same client on B: none.
      assert.equal((await unwrap(a, a.user, "10.2.0.1")).statusCode, 200);
      assert.equal((await alerts(dbA, "alert.first-seen", a.userId)).length, 1);
      assert.equal((await unwrap(b, a.user, "10.2.0.1")).statusCode, 200);
      assert.equal((await alerts(dbA, "alert.first-seen", a.userId)).length, 1);
      // A new address on B alerts once, then A knows it too.
      assert.equal((await unwrap(b, a.user, "10.2.0.2")).statusCode, 200);
      assert.equal((await unwrap(a, a.user, "10.2.0.2")).statusCode, 200);
      assert.equal((await alerts(dbA, "alert.first-seen", a.userId)).length, 2);

      // A rate alert on A blocks the principal; B refuses it once its cached set expires.
      clock.t += 60 * 60_000; // an hour later the baseline of 2 per minute has decayed
      for (let i = 0; i < 5; i++)
        assert.equal((await unwrap(a, a.user, "10.2.0.1")).statusCode, 200);
      const rate = await alerts(dbA, "alert.rate", a.userId);
      assert.equal(rate.length, 1);
      // A fractional baseline is a decimal string in the (integers-only) canonical entry.
      assert.equal((rate[0]!.resource as { baseline: unknown }).baseline, "0.04");
      assert.equal((await unwrap(a, a.user, "10.2.0.1")).statusCode, 403);
      clock.t += 2001;
      assert.equal((await unwrap(b, a.user, "10.2.0.1")).statusCode, 403);
      const listed = await b.app.inject({
        method: "GET",
        url: "/v1/principals/blocked",
        headers: bearer(b.admin),
      });
      assert.deepEqual(
        listed.json().blocked.map((x: { principal: string }) => x.principal),
        [a.userId],
      );
      // Unblocked on B: A serves it again after its cache window.
      const u = await b.app.inject({
        method: "POST",
        url: `/v1/principals/${encodeURIComponent(a.userId)}/unblock`,
        headers: bearer(b.admin),
        payload: {},
      });
      assert.equal(u.statusCode, 200, u.body);
      assert.equal((await unwrap(b, a.user, "10.2.0.1")).statusCode, 200);
      clock.t += 2001;
      assert.equal((await unwrap(a, a.user, "10.2.0.1")).statusCode, 200);
      await verifies(a);
    } finally {
      await a.app.close();
      await b.app.close();
      await dbA.close();
      await dbB.close();
    }
  });
});
