/**
 * Two service replicas on one private PostgreSQL instance under concurrent unwrap load from
 * both, PostgreSQL restarted (`-m fast`) mid-load: both recover without a restart of their
 * own, every answer is 200 or 503, every 200's request id (`x-request-id`) is in the one shared
 * audit chain exactly once (as `allowed`), no request id appears twice, and the chain verifies.
 * The single-replica version with crash and stop is pg-restart.test.ts.
 */
import assert from "node:assert/strict";
import { Agent } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import {
  buildServer,
  type Database,
  openDatabase,
  verifyAuditLog,
} from "../../src/service/index.js";
import { ROOT, token } from "./helpers.js";
import { type Answer, auditRequestIds, call, repeatedIds, sleep, statusSummary } from "./load.js";
import { type PgInstance, privatePgSkip, startPgInstance } from "./pg-instance.js";

const LOOPS_PER_REPLICA = 6;

interface Replica {
  db: Database;
  app: FastifyInstance;
  port: number;
  answers: Answer[];
}

describe("PostgreSQL restart under load, two replicas", { skip: privatePgSkip() }, () => {
  let pgi: PgInstance;
  const replicas: Replica[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 2 * LOOPS_PER_REPLICA + 4 });

  before(async () => {
    pgi = await startPgInstance();
    // One after the other: the first creates the schema, the server id and the root check.
    for (let i = 0; i < 2; i++) {
      const db = await openDatabase(pgi.url);
      const app = await buildServer({
        db,
        rootKey: ROOT,
        checkpointEvery: 16,
        checkpointIntervalS: 0,
        sweepEveryMs: 0,
        logger: false,
      });
      await app.listen({ host: "127.0.0.1", port: 0 });
      replicas.push({ db, app, port: (app.server.address() as AddressInfo).port, answers: [] });
    }
  });

  after(async () => {
    agent.destroy();
    for (const r of replicas) {
      await r.app.close();
      await r.db.close();
    }
    await pgi?.cleanup();
  });

  test("both recover; each released key's request id is in the shared chain once", async (t) => {
    const [a, b] = replicas as [Replica, Replica];
    assert.equal(a.app.tensorseal.serverId, b.app.tensorseal.serverId, "one service");
    const tok = await token(a.db, "admin,wrap,unwrap");
    assert.equal((await call(a.port, agent, "POST", "/v1/keys", tok, { name: "m" })).status, 200);
    const g = JSON.parse(
      (await call(b.port, agent, "POST", "/v1/datakeys/generate", tok, { key: "m" })).body,
    );
    let stop = false;
    const loop = async (r: Replica) => {
      while (!stop) {
        const ans = await call(r.port, agent, "POST", "/v1/datakeys/unwrap", tok, {
          stanza: g.stanza,
        });
        r.answers.push(ans);
        if (ans.status !== 200) await sleep(25); // while down, do not spin
      }
    };
    const okSince = async (r: Replica, from: number, name: string) => {
      const deadline = Date.now() + 20_000;
      while (!r.answers.slice(from).some((x) => x.status === 200)) {
        assert.ok(Date.now() < deadline, `replica ${name}: no successful unwrap after the restart`);
        await sleep(50);
      }
    };
    const loops = replicas.flatMap((r) => Array.from({ length: LOOPS_PER_REPLICA }, () => loop(r)));
    try {
      await sleep(1500);
      await pgi.restart("fast");
      const fromA = a.answers.length;
      const fromB = b.answers.length;
      await Promise.all([okSince(a, fromA, "A"), okSince(b, fromB, "B")]);
      await sleep(1500);
    } finally {
      stop = true;
      await Promise.all(loops);
    }

    const all = [...a.answers, ...b.answers];
    const summary = `A ${statusSummary(a.answers)}, B ${statusSummary(b.answers)}`;
    t.diagnostic(`answers by status: ${summary}`);
    const odd = all.filter((x) => x.status !== 200 && x.status !== 503);
    assert.deepEqual(
      odd.slice(0, 5).map((x) => `${x.status} ${x.error ?? x.body}`),
      [],
      `every answer is 200 or 503 (${summary})`,
    );
    for (const x of all.filter((y) => y.status === 503)) {
      const e = JSON.parse(x.body) as { error: string };
      assert.ok(["audit_unavailable", "database_unavailable"].includes(e.error), x.body);
      assert.ok(!x.body.includes(g.fileKey), "nothing released while the audit is down");
    }
    for (const r of replicas) {
      const ok = r.answers.filter((x) => x.status === 200);
      assert.ok(ok.length > 50, `load ran on both replicas (${summary})`);
      for (const x of ok) assert.equal(JSON.parse(x.body).fileKey, g.fileKey);
    }

    // Every answer (200 or 503) carries an id of its own, across both replicas.
    assert.deepEqual(repeatedIds(all), [], "no two answers share a request id");
    const v = await verifyAuditLog(b.db, { publicKey: a.app.tensorseal.auditPublicKey });
    assert.deepEqual(v.problems, []);
    assert.ok(v.ok);
    const entries = await auditRequestIds(a.db);
    assert.deepEqual(repeatedIds(entries), [], "no request id appears twice in the audit");
    const allowed = new Map(entries.filter((e) => e.outcome === "allowed").map((e) => [e.id, e]));
    const lost = all.filter((x) => x.status === 200 && !allowed.has(x.id)).map((x) => x.id);
    assert.deepEqual(lost, [], "every released key has its audit entry");
  });
});
