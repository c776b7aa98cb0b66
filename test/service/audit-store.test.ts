/**
 * The audit store under contention: two stores (as two replicas) append concurrently to one
 * chain. On PostgreSQL each remembers its last head and tries a one-statement INSERT first, so
 * they keep colliding on the next seq; every collision must fall back to the locked path and
 * leave one linear, verifiable chain with every record exactly once (the PostgreSQL case failed
 * with duplicate keys before the fast path took the advisory lock). On SQLite the second writer
 * is another process; this checks the chain stays whole, but it did not reproduce the stale
 * snapshot that BEGIN IMMEDIATE guards against (the window between read and write is
 * microseconds), so it passes without it too.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import test from "node:test";
import { fileURLToPath } from "node:url";
import { AuditStore, verifyAuditLog } from "../../src/service/index.js";
import { loadServerState } from "../../src/service/state.js";
import { appendBatches, batchIds, record } from "./audit-store-helpers.js";
import { pgDb, ROOT, sqliteDb, type TestDb } from "./helpers.js";

const CHILD = fileURLToPath(new URL("./audit-append-child.js", import.meta.url));
const BATCHES = 60;

/** This process and a child process append BATCHES batches each to one chain, at once. */
async function contend(tdb: TestDb): Promise<void> {
  const d = await tdb.open();
  try {
    const state = await loadServerState(d, ROOT, { checkpointEvery: 16 });
    const policy = { every: state.checkpointEvery, server: state.serverId, key: state.signingKey };
    const child = spawn(
      process.execPath,
      [CHILD, tdb.url, Buffer.from(ROOT).toString("hex"), "b", String(BATCHES)],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
    const exited = once(child, "exit");
    await appendBatches(new AuditStore(d, policy), "a", BATCHES);
    const [code] = await exited;
    assert.equal(code, 0, "the child writer finished without an error");

    const ids = [...batchIds("a", BATCHES), ...batchIds("b", BATCHES)].flat();
    const rows = await d.db.selectFrom("audit").select(["seq", "entry"]).orderBy("seq").execute();
    assert.equal(rows.length, ids.length, "every record appended once");
    assert.deepEqual(
      rows.map((r) => Number(r.seq)),
      ids.map((_, i) => i + 1),
      "seq without gaps",
    );
    const seen = rows.map((r) => JSON.parse(r.entry).requestId as string).sort();
    assert.deepEqual(seen, [...ids].sort(), "each record exactly once");
    const v = await verifyAuditLog(d, { publicKey: state.auditPublicKey });
    assert.deepEqual(v.problems, []);
    assert.ok(v.ok);
    assert.equal(v.entries, ids.length);
    assert.equal(v.checkpoints, Math.floor(ids.length / 16));
  } finally {
    await d.close();
  }
}

test("two writers appending at once on PostgreSQL keep one linear chain", async (t) => {
  const tdb = await pgDb();
  if (typeof tdb === "string") return t.skip(tdb);
  try {
    await contend(tdb);
  } finally {
    await tdb.drop();
  }
});

test("two processes appending at once on one SQLite file keep one linear chain", async () => {
  const tdb = sqliteDb();
  try {
    await contend(tdb);
  } finally {
    await tdb.drop();
  }
});
test("a stale remembered head never forks the chain (another writer appended meanwhile)", async (t) => {
  const tdb = await pgDb();
  if (typeof tdb === "string") return t.skip(tdb);
  const [da, db] = [await tdb.open(), await tdb.open()];
  try {
    const state = await loadServerState(da, ROOT, { checkpointEvery: 1000 });
    const policy = { every: state.checkpointEvery, server: state.serverId, key: state.signingKey };
    const a = new AuditStore(da, policy);
    const b = new AuditStore(db, policy);
    await a.append([record("a1")]); // a remembers head 1
    await b.append([record("b1"), record("b2")]); // the chain moves to 3 behind a's back
    const out = await a.append([record(`a2-${randomBytes(2).toString("hex")}`)]);
    assert.equal(out[0]!.seq, 4, "a's fast path collided and the locked path read head 3");
    const v = await verifyAuditLog(da, { publicKey: state.auditPublicKey });
    assert.ok(v.ok, v.problems.join("; "));
    assert.equal(v.entries, 4);
  } finally {
    await da.close();
    await db.close();
    await tdb.drop();
  }
});
