/**
 * `GET /v1/overview` (the console's summary), on SQLite and PostgreSQL: an admin sees every
 * section; an auditor only the alerts, the chain, the doctor findings and the open incidents; a
 * reader only the open incidents (the rest named in `omitted`); a custom policy that forbids one
 * section's action leaves that section out (principals:read, incidents:read); an unwrap-only
 * workload is denied. One audit entry per summary. The alerts are counted through the
 * (outcome, seq) index: EXPLAIN on both databases names it. The findings (the doctor's
 * service checks) appear for a key past its rotation period and an old bootstrap token, and
 * are empty on a clean service.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { sql } from "kysely";
import { judgeDualControl } from "../../src/doctor/check-dual-control.js";
import { TokenRepo } from "../../src/service/auth/tokens.js";
import {
  Authorizer,
  type Database,
  DEFAULT_POLICIES,
  type ServerOptions,
} from "../../src/service/index.js";
import {
  bearer,
  describeEachDb,
  inject,
  keyAndDataKey,
  lastAuditEntry,
  server,
  sqliteDb,
  token,
} from "../service/helpers.js";

const SECTIONS = ["keys", "approvals", "alerts", "blocked", "chain", "findings", "incidents"];

/** A checkpoint anchor file in a fresh directory (the OS removes tmp; the tests write little). */
const anchorFile = () =>
  join(mkdtempSync(join(tmpdir(), "tensorseal-anchor-")), "checkpoints.jsonl");

describeEachDb("GET /v1/overview", (suite) => {
  let app: FastifyInstance;
  let db: Database;
  let admin: string;
  let auditor: string;
  let reader: string;
  let unwrapper: string;

  before(async () => {
    if (suite.skip) return;
    db = suite.db;
    app = await server(db, {
      sweepEveryMs: 0,
      console: {},
      // Dual control on for destroy and export: no service.dual-control-off finding.
      approvals: { required: { destroy: 2, export: 2 } },
      // Checkpoints anchored outside the database: no service.audit-anchor-missing finding.
      checkpointAnchor: { file: anchorFile() },
      // Five unwraps in a minute alert and block (no warm-up, no first-seen alerts).
      anomaly: { warmupMinutes: 0, minRate: 5, rateFactor: 2, firstSeen: false, autoBlock: true },
    });
    admin = await token(db, "admin,wrap");
    auditor = await token(db, "audit");
    reader = await token(db, "reader");
    unwrapper = await token(db, "unwrap");
    const { stanza } = await keyAndDataKey(app, admin, "m");
    /** A request of the admin's that must answer `status`. */
    const asAdmin = async (
      method: "POST" | "PATCH",
      url: string,
      status: number,
      payload?: object,
    ) => {
      const r = await inject(app, method, url, admin, payload);
      assert.equal(r.statusCode, status, r.body);
      return r;
    };
    await asAdmin("PATCH", "/v1/keys/m", 200, { rotationPeriod: 86_400 });
    await keyAndDataKey(app, admin, "later");
    // A pending destroy (dual control): rotate so v1 is not the primary, then request.
    await asAdmin("POST", "/v1/keys/m/rotate", 200);
    await asAdmin("POST", "/v1/keys/m/versions/1/schedule-destroy", 202, { days: 3 });
    // Two incidents opened, one of them closed: one open.
    const ids: string[] = [];
    for (const title of ["leaked token", "lost laptop"]) {
      const scope = [{ kind: "key", value: "m" }];
      const i = await asAdmin("POST", "/v1/incidents", 200, {
        title,
        severity: "high",
        scope,
        summary: "s",
      });
      ids.push(i.json().id);
    }
    await asAdmin("POST", `/v1/incidents/${ids[1]}/close`, 200, { resolution: "found" });
    // A burst: one rate alert, and the unwrapper is blocked.
    for (let i = 0; i < 12; i++)
      await inject(app, "POST", "/v1/datakeys/unwrap", unwrapper, { stanza });
  });

  const overview = (tok: string) =>
    app.inject({ method: "GET", url: "/v1/overview", headers: bearer(tok) });

  test("an admin sees every section, with the figures the API routes give", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const r = await overview(admin);
    assert.equal(r.statusCode, 200, r.body);
    const o = r.json();
    assert.deepEqual(o.omitted, []);
    assert.equal(o.keys.total, 2);
    assert.deepEqual(
      o.keys.due.map((k: { name: string }) => k.name),
      ["m"],
      "m rotates daily; later has no period",
    );
    assert.deepEqual(o.approvals, { count: 1, more: false });
    assert.deepEqual(o.incidents, { count: 1, more: false }, "two opened, one closed");
    assert.ok(o.alerts.count >= 1, JSON.stringify(o.alerts));
    assert.equal(o.alerts.more, false);
    assert.deepEqual(o.blocked, { count: 1 });
    const head = await db.db
      .selectFrom("audit")
      .select(["seq", "hash"])
      .orderBy("seq", "desc")
      .limit(1)
      .executeTakeFirstOrThrow();
    // The head as read before the summary's own entry was appended.
    assert.deepEqual(o.chain.head, { seq: Number(head.seq) - 1, hash: o.chain.head.hash });
    assert.equal(o.chain.server, app.tensorseal.serverId);
    assert.ok(o.chain.checkpoint, "checkpoints are signed every 4 entries");
    assert.equal(o.chain.checkpoint.valid, true);
    // Clean: m's primary version is new, every token was made today.
    assert.deepEqual(o.findings, [], JSON.stringify(o.findings));
  });

  test("one audit entry per summary, naming the sections shown", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const before = await entryCount(db);
    assert.equal((await overview(auditor)).statusCode, 200);
    assert.equal(await entryCount(db), before + 1);
    const e = await lastAuditEntry(db);
    assert.equal(e.action, "overview.read");
    assert.equal(e.outcome, "allowed");
    assert.deepEqual(e.resource, {
      shown: ["alerts", "chain", "findings", "incidents"],
      omitted: ["keys", "approvals", "blocked"],
    });
  });

  test("an auditor sees only the alerts, the chain, the findings and incidents; a reader only the incidents", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const a = (await overview(auditor)).json();
    assert.deepEqual(a.omitted, ["keys", "approvals", "blocked"]);
    for (const s of ["keys", "approvals", "blocked"]) assert.equal(a[s], undefined, s);
    assert.ok(a.alerts && a.chain && Array.isArray(a.findings));
    assert.deepEqual(a.incidents, { count: 1, more: false });
    // The reader may read artifacts and incidents only: of the summary, the open incidents.
    const r = await overview(reader);
    assert.equal(r.statusCode, 200, r.body);
    const hidden = SECTIONS.filter((s) => s !== "incidents");
    assert.deepEqual(r.json().omitted, hidden);
    for (const s of hidden) assert.equal(r.json()[s], undefined, s);
    assert.deepEqual(r.json().incidents, { count: 1, more: false });
    // The same reader is refused the routes those sections summarise.
    for (const url of ["/v1/keys", "/v1/approvals", "/v1/audit", "/v1/principals/blocked"]) {
      const x = await app.inject({ method: "GET", url, headers: bearer(reader) });
      assert.equal(x.statusCode, 403, url);
    }
  });

  test("a workload without overview:read is denied (audited)", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const w = await token(db, "wrap");
    const r = await overview(w);
    assert.equal(r.statusCode, 403);
    const e = await lastAuditEntry(db);
    assert.deepEqual([e.action, e.outcome], ["overview.read", "denied"]);
  });

  test("the alerts are counted through the (outcome, seq) index (EXPLAIN)", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const q = db.db
      .selectFrom("audit")
      .select(["seq", "entry", "hash"])
      .where("seq", ">", 0)
      .where("outcome", "=", "alert")
      .where("ts", ">=", "2026-01-01T00:00:00.000Z")
      .orderBy("seq")
      .limit(101)
      .compile();
    let plan: string;
    if (db.dialect === "sqlite") {
      const r = await db.db.executeQuery<{ detail: string }>({
        ...q,
        sql: `explain query plan ${q.sql}`,
      });
      plan = r.rows.map((x) => x.detail).join("\n");
    } else {
      // A small table may be scanned anyway; with scans priced out, the index must serve it.
      plan = await db.db.transaction().execute(async (trx) => {
        await sql`set local enable_seqscan = off`.execute(trx);
        const r = await trx.executeQuery<Record<string, string>>({
          ...q,
          sql: `explain ${q.sql}`,
        });
        return r.rows.map((x) => Object.values(x)[0]).join("\n");
      });
    }
    assert.match(plan, /audit_outcome/, plan);
  });
});

/** Runs `fn` against a server on a fresh SQLite database; closed and dropped after. */
async function withServer(
  opts: Partial<ServerOptions>,
  fn: (app: FastifyInstance, db: Database) => Promise<void>,
): Promise<void> {
  const tdb = sqliteDb();
  const db = await tdb.open();
  const app = await server(db, { sweepEveryMs: 0, ...opts });
  try {
    await fn(app, db);
  } finally {
    await app.close();
    await db.close();
    await tdb.drop();
  }
}

/** withServer under the default Cedar policies plus one more, `@id(policyId)` with `text`. */
async function withPolicy(
  policyId: string,
  text: string,
  fn: (app: FastifyInstance, db: Database) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "tensorseal-overview-policy-"));
  try {
    writeFileSync(
      join(dir, "00-default.cedar"),
      Object.entries(DEFAULT_POLICIES)
        .map(([id, p]) => `@id("${id}")\n${p}`)
        .join("\n\n"),
    );
    writeFileSync(join(dir, `10-${policyId}.cedar`), `@id("${policyId}")\n${text}\n`);
    await withServer({ authorizer: await Authorizer.fromDir(dir) }, fn);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a custom policy that forbids one section's action leaves that section out", async () => {
  const forbid = `forbid (principal, action == TensorSeal::Action::"principals:read", resource);`;
  await withPolicy("no-blocked-list", forbid, async (app, db) => {
    const t = await token(db, "admin");
    const r = await app.inject({ method: "GET", url: "/v1/overview", headers: bearer(t) });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(r.json().omitted, ["blocked"]);
    assert.equal(r.json().blocked, undefined);
    assert.ok(r.json().keys);
    // The route it summarises is refused the same way.
    const b = await app.inject({
      method: "GET",
      url: "/v1/principals/blocked",
      headers: bearer(t),
    });
    assert.equal(b.statusCode, 403);
  });
});

test("a reader whose policy forbids incidents:read sees no incidents section, and the list is refused", async () => {
  const forbid = `forbid (principal in TensorSeal::Role::"reader", action == TensorSeal::Action::"incidents:read", resource);`;
  await withPolicy("readers-no-incidents", forbid, async (app, db) => {
    const admin = await token(db, "admin");
    const reader = await token(db, "reader");
    const i = await app.inject({
      method: "POST",
      url: "/v1/incidents",
      headers: bearer(admin),
      payload: {
        title: "t",
        severity: "medium",
        scope: [{ kind: "key", value: "k" }],
        summary: "s",
      },
    });
    assert.equal(i.statusCode, 200, i.body);
    const get = (t: string) =>
      app.inject({ method: "GET", url: "/v1/overview", headers: bearer(t) });
    // The admin still sees the open incident: the forbid names readers only.
    assert.deepEqual((await get(admin)).json().incidents, { count: 1, more: false });
    const r = await get(reader);
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(r.json().omitted, SECTIONS);
    assert.equal(r.json().incidents, undefined);
    const l = await app.inject({
      method: "GET",
      url: "/v1/incidents?state=open",
      headers: bearer(reader),
    });
    assert.equal(l.statusCode, 403, l.body);
  });
});

test("findings: a key past its rotation period and an old bootstrap token, never a token", async () => {
  // Dual control on and checkpoints anchored: only the findings the test sets up appear.
  const opts = {
    approvals: { required: { destroy: 2, export: 2 } },
    checkpointAnchor: { file: anchorFile() },
  };
  await withServer(opts, async (app, db) => {
    const admin = await token(db, "admin,wrap");
    const auditor = await token(db, "audit");
    const reader = await token(db, "reader");
    await keyAndDataKey(app, admin, "daily");
    await keyAndDataKey(app, admin, "unperiodic");
    const patch = await app.inject({
      method: "PATCH",
      url: "/v1/keys/daily",
      headers: bearer(admin),
      payload: { rotationPeriod: 86_400 },
    });
    assert.equal(patch.statusCode, 200, patch.body);
    const get = async (t: string) => {
      const r = await app.inject({ method: "GET", url: "/v1/overview", headers: bearer(t) });
      assert.equal(r.statusCode, 200, r.body);
      return r.json();
    };
    assert.deepEqual((await get(admin)).findings, [], "clean: nothing overdue, tokens new");
    // The bad state: daily's primary version two days old, a labelled admin token 100 days
    // old, and an old token already revoked (not reported).
    const old = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
    await db.db
      .updateTable("key_versions")
      .set({ created: old(2) })
      .where("name", "in", ["daily", "unperiodic"])
      .execute();
    const repo = new TokenRepo(db);
    const ci = await repo.create(["admin"], "ci-bot");
    const gone = await repo.create(["reader"], "gone");
    await repo.revoke(gone.id);
    await db.db
      .updateTable("tokens")
      .set({ created: old(100) })
      .where("id", "in", [ci.id, gone.id])
      .execute();
    for (const who of [admin, auditor]) {
      const f = (await get(who)).findings as Record<string, string>[];
      assert.deepEqual(
        f.map((x) => [x.id, x.severity]),
        [
          ["service.token-no-expiry", "error"],
          ["service.key-rotation-overdue", "warning"],
        ],
        JSON.stringify(f),
      );
      assert.match(
        f[0]?.message ?? "",
        new RegExp(`bootstrap token ${ci.id} \\(ci-bot\\).*100 days old`),
      );
      assert.match(f[0]?.fix ?? "", new RegExp(`token revoke ${ci.id}`));
      assert.match(f[1]?.message ?? "", /service key daily: primary version 1 is 2 days old/);
      for (const x of f) {
        assert.deepEqual(Object.keys(x).sort(), ["evidence", "fix", "id", "message", "severity"]);
        // Never a token: neither the new one's secret nor the caller's.
        for (const secret of [ci.token, admin, auditor])
          assert.ok(!JSON.stringify(x).includes(secret), "no bearer token in a finding");
      }
    }
    // A reader never sees them, though they exist.
    const r = await get(reader);
    assert.ok(r.omitted.includes("findings"));
    assert.equal(r.findings, undefined);
    // The same database served without dual control for export and without an anchor: two
    // more findings, judged from the service's own settings.
    const lax = await server(db, { sweepEveryMs: 0, approvals: { required: { destroy: 2 } } });
    try {
      const o = await lax.inject({ method: "GET", url: "/v1/overview", headers: bearer(admin) });
      const anchor = (o.json().findings as Record<string, string>[]).filter(
        (x) => x.id === "service.audit-anchor-missing",
      );
      assert.equal(anchor.length, 1, o.body);
      assert.match(anchor[0]?.fix ?? "", /--checkpoint-anchor FILE/);
      const dual = (o.json().findings as Record<string, string>[]).filter(
        (x) => x.id === "service.dual-control-off",
      );
      assert.equal(dual.length, 1, o.body);
      assert.equal(dual[0]?.severity, "warning");
      assert.match(dual[0]?.message ?? "", /dual control is off for export:/);
      assert.match(dual[0]?.evidence ?? "", /destroy=2, export=1; 2 of 2 keys not in a tier/);
      assert.match(dual[0]?.fix ?? "", /--approvals destroy=2,export=2/);
    } finally {
      await lax.close();
    }
  });
});

test("dual control: off only while some key is not under a dual-control tier", () => {
  const off = { destroy: 1, export: 2 };
  assert.deepEqual(judgeDualControl(off, { total: 3, exposed: 0 }, "s"), [], "all keys covered");
  assert.deepEqual(judgeDualControl({ destroy: 2, export: 3 }, { total: 3, exposed: 3 }, "s"), []);
  const [f, ...rest] = judgeDualControl(off, { total: 3, exposed: 1 }, "s");
  assert.equal(rest.length, 0);
  assert.match(f?.message ?? "", /off for destroy: one admin/);
  // No key yet: the next one created would run on one word.
  assert.equal(judgeDualControl(off, { total: 0, exposed: 0 }, "s").length, 1);
});

async function entryCount(db: Database): Promise<number> {
  const r = await db.db
    .selectFrom("audit")
    .select("seq")
    .orderBy("seq", "desc")
    .limit(1)
    .executeTakeFirstOrThrow();
  return Number(r.seq);
}
