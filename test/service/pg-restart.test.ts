/**
 * Issue #4 §9: PostgreSQL restarted and crashed under load. A private PostgreSQL instance
 * (test/service/pg-instance.ts) backs a listening service driven by 12 concurrent unwrap loops;
 * the server is restarted with `-m fast`, crashed and restarted with `-m immediate`, and stopped
 * for a while. Checked: the process survives, every answer is 200 or 503 (no other status, no
 * hang), nothing is released while the audit cannot be written, /readyz says so, requests
 * succeed again without restarting the service, the audit chain verifies, and every released
 * key's request id is in the audit exactly once while no request id appears twice.
 *
 * A second test forces the ambiguous case on SQLite: the batch is committed but its caller
 * sees the connection die (COMMIT outcome unknown).
 */
import assert from "node:assert/strict";
import { Agent } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import {
  AuditStore,
  buildServer,
  type Database,
  openDatabase,
  verifyAuditLog,
} from "../../src/service/index.js";
import { loadServerState } from "../../src/service/state.js";
import { bearer, ROOT, server, sqliteDb, token } from "./helpers.js";
import { type Answer, auditRequestIds, call, sleep } from "./load.js";
import { type PgInstance, privatePgSkip, startPgInstance } from "./pg-instance.js";

const LOOPS = 12;

describe("PostgreSQL restart under load", { skip: privatePgSkip() }, () => {
  let pgi: PgInstance;
  let db: Database;
  let app: FastifyInstance;
  let port: number;
  const agent = new Agent({ keepAlive: true, maxSockets: LOOPS + 4 });
  const logs: string[] = [];

  before(async () => {
    pgi = await startPgInstance();
    db = await openDatabase(pgi.url);
    app = await buildServer({
      db,
      rootKey: ROOT,
      checkpointEvery: 16,
      sweepEveryMs: 0,
      logger: {
        level: "warn",
        stream: new Writable({
          write(c, _e, cb) {
            logs.push(String(c));
            cb();
          },
        }),
      },
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    port = (app.server.address() as AddressInfo).port;
  });

  after(async () => {
    agent.destroy();
    await app?.close();
    await db?.close();
    await pgi?.cleanup();
  });

  test("the service recovers; the audit chain has every released key once", async (t) => {
    const tok = await token(db, "admin,wrap,unwrap");
    assert.equal((await call(port, agent, "POST", "/v1/keys", tok, { name: "m" })).status, 200);
    const g = JSON.parse(
      (await call(port, agent, "POST", "/v1/datakeys/generate", tok, { key: "m" })).body,
    );
    const answers: Answer[] = [];
    let stop = false;
    const loop = async () => {
      while (!stop) {
        const a = await call(port, agent, "POST", "/v1/datakeys/unwrap", tok, {
          stanza: g.stanza,
        });
        answers.push(a);
        if (a.status !== 200) await sleep(25); // while down, do not spin
      }
    };
    const okSince = async (from: number, what: string) => {
      const deadline = Date.now() + 20_000;
      while (!answers.slice(from).some((a) => a.status === 200)) {
        assert.ok(Date.now() < deadline, `no successful unwrap after ${what}`);
        await sleep(50);
      }
    };
    const loops = Array.from({ length: LOOPS }, loop);
    try {
      await sleep(1500);
      for (const mode of ["fast", "immediate"] as const) {
        await pgi.restart(mode);
        const from = answers.length;
        await okSince(from, `restart -m ${mode}`);
        await sleep(1500);
      }
      // A longer outage: nothing is released, readiness says so.
      await pgi.stop("immediate");
      const ready = await call(port, agent, "GET", "/readyz");
      assert.equal(ready.status, 503, ready.body);
      const probe = await call(port, agent, "POST", "/v1/datakeys/unwrap", tok, {
        stanza: g.stanza,
      });
      assert.equal(probe.status, 503, probe.body);
      assert.equal(JSON.parse(probe.body).error, "audit_unavailable");
      await sleep(1500);
      await pgi.start();
      const from = answers.length;
      await okSince(from, "start after a stop");
      assert.equal((await call(port, agent, "GET", "/readyz")).status, 200);
      await sleep(1000);
    } finally {
      stop = true;
      await Promise.all(loops);
    }

    const by = new Map<number, number>();
    for (const a of answers) by.set(a.status, (by.get(a.status) ?? 0) + 1);
    const summary = JSON.stringify(Object.fromEntries(by));
    t.diagnostic(`answers by status: ${summary}`);
    const odd = answers.filter((a) => a.status !== 200 && a.status !== 503);
    assert.deepEqual(
      odd.slice(0, 5).map((a) => `${a.status} ${a.error ?? a.body}`),
      [],
      `every answer is 200 or 503 (${summary})`,
    );
    assert.ok((by.get(503) ?? 0) > 0, `the outage was seen (${summary})`);
    for (const a of answers.filter((x) => x.status === 503)) {
      const b = JSON.parse(a.body) as { error: string };
      assert.ok(["audit_unavailable", "database_unavailable"].includes(b.error), a.body);
      assert.ok(!a.body.includes("fileKey"), "nothing released while the audit is down");
    }

    const v = await verifyAuditLog(db, { publicKey: app.tensorseal.auditPublicKey });
    assert.deepEqual(v.problems, []);
    assert.ok(v.ok);
    const entries = await auditRequestIds(db);
    const count = new Map<string, number>();
    for (const e of entries) count.set(e.id, (count.get(e.id) ?? 0) + 1);
    const twice = [...count].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], "no request id appears twice in the audit");
    const allowed = new Set(entries.filter((e) => e.outcome === "allowed").map((e) => e.id));
    const released = answers.filter((a) => a.status === 200);
    const lost = released.filter((a) => !allowed.has(a.id));
    assert.deepEqual(
      lost.map((a) => a.id),
      [],
      "every released key has its audit entry",
    );
    assert.ok(released.length > 100, `load ran (${summary})`);

    const text = logs.join("");
    assert.ok(text.includes("database connection lost"), "lost connections are logged");
    for (const secret of [tok, g.fileKey]) assert.ok(!text.includes(secret), "a secret in the log");
  });
});

test("COMMIT outcome unknown: 503, no key, the next request continues the stored chain", async () => {
  const tdb = sqliteDb();
  const db = await tdb.open();
  const state = await loadServerState(db, ROOT, { checkpointEvery: 4 });
  const store = new AuditStore(db, {
    every: state.checkpointEvery,
    server: state.serverId,
    key: state.signingKey,
  });
  let loseNextCommit = false;
  const app = await server(db, {
    auditSink: {
      // The batch lands, then the caller sees the connection die, as when COMMIT's reply is lost.
      async append(records) {
        const out = await store.append(records);
        if (loseNextCommit) {
          loseNextCommit = false;
          throw new Error("Connection terminated unexpectedly");
        }
        return out;
      },
    },
  });
  try {
    const tok = await token(db, "admin,wrap,unwrap");
    const post = (url: string, payload: Record<string, unknown>) =>
      app.inject({ method: "POST", url, headers: bearer(tok), payload });
    await post("/v1/keys", { name: "m" });
    const g = (await post("/v1/datakeys/generate", { key: "m" })).json();
    loseNextCommit = true;
    const lost = await post("/v1/datakeys/unwrap", { stanza: g.stanza });
    assert.equal(lost.statusCode, 503);
    assert.equal(lost.json().error, "audit_unavailable");
    assert.ok(!lost.body.includes(g.fileKey));
    const next = await post("/v1/datakeys/unwrap", { stanza: g.stanza });
    assert.equal(next.statusCode, 200);
    assert.equal(next.json().fileKey, g.fileKey);
    const v = await verifyAuditLog(db);
    assert.deepEqual(v.problems, []);
    const ids = await auditRequestIds(db);
    const of = (id: unknown) => ids.filter((e) => e.id === id).length;
    assert.equal(of(lost.headers["x-request-id"]), 1, "the landed entry, and no second one");
    assert.equal(of(next.headers["x-request-id"]), 1);
  } finally {
    await app.close();
    await db.close();
    await tdb.drop();
  }
});
