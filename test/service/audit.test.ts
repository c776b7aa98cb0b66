/**
 * The audit tamper suite, on SQLite and PostgreSQL: each way of tampering with the stored log
 * is detected by verifyAuditLog. Checkpoints every 4 entries (the verifier is told so, as an
 * operator configures it); the log holds 10 entries, and the clean close signed entry 10.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { sql } from "kysely";
import type { Database } from "../../src/service/index.js";
import { verifyAuditLog } from "../../src/service/index.js";
import { bearer, describeEachFreshDb, server, type TestDb, token } from "./helpers.js";

/** The verifier's own expectation for these logs (the server signs every 4 here). */
const EVERY_4 = { checkpointEvery: 4 };

/** A fresh database with `n` audit entries (checkpoints at multiples of `every`, and at n). */
async function populated(
  make: () => Promise<TestDb | string>,
  n = 10,
  every = 4,
): Promise<{ db: Database; t: TestDb } | string> {
  const t = await make();
  if (typeof t === "string") return t;
  const db = await t.open();
  const app = await server(db, { checkpointEvery: every });
  const tok = await token(db, "admin,wrap,unwrap");
  await app.inject({
    method: "POST",
    url: "/v1/keys",
    headers: bearer(tok),
    payload: { name: "k" },
  });
  for (let i = 0; i < n - 1; i++) {
    await app.inject({
      method: "POST",
      url: "/v1/datakeys/generate",
      headers: bearer(tok),
      payload: { key: "k" },
    });
  }
  await app.close();
  return { db, t };
}

async function entry(db: Database, seq: number): Promise<{ entry: string; hash: string }> {
  return db.db
    .selectFrom("audit")
    .select(["entry", "hash"])
    .where("seq", "=", seq)
    .executeTakeFirstOrThrow();
}

type Tamper = (db: Database) => Promise<void>;

const tampers: [string, Tamper, RegExp][] = [
  [
    "edited entry",
    async (db) => {
      const e = await entry(db, 3);
      await db.db
        .updateTable("audit")
        .set({ entry: e.entry.replace('"allowed"', '"denied"') })
        .where("seq", "=", 3)
        .execute();
    },
    /entry 3 does not match its hash/,
  ],
  [
    "edited entry with the chain rehashed after it",
    async (db) => {
      const { chainRewrite } = await import("./tamper.js");
      await chainRewrite(db, 2, (o) => ({ ...o, outcome: "denied" }));
    },
    /differs from its signed checkpoint/,
  ],
  [
    "deleted entry",
    async (db) => void (await db.db.deleteFrom("audit").where("seq", "=", 5).execute()),
    /entries 5..5 are missing/,
  ],
  [
    "inserted entry",
    async (db) => {
      const e = await entry(db, 6);
      await db.db.insertInto("audit").values({ seq: 11, entry: e.entry, hash: e.hash }).execute();
    },
    /entry 11 says it is entry 6/,
  ],
  [
    "reordered entries",
    async (db) => {
      const a = await entry(db, 6);
      const b = await entry(db, 7);
      await db.db.updateTable("audit").set(b).where("seq", "=", 6).execute();
      await db.db.updateTable("audit").set(a).where("seq", "=", 7).execute();
    },
    /entry 6 says it is entry 7/,
  ],
  [
    "rollback behind a checkpoint",
    async (db) => void (await db.db.deleteFrom("audit").where("seq", ">", 6).execute()),
    /rollback: the log ends at entry 6 but checkpoint 8 was signed/,
  ],
  [
    "deleted checkpoint",
    async (db) => void (await db.db.deleteFrom("checkpoints").where("seq", "=", 4).execute()),
    /checkpoint 4 is missing/,
  ],
  [
    "forged checkpoint signature",
    async (db) =>
      void (await db.db
        .updateTable("checkpoints")
        .set({ signature: Buffer.alloc(64).toString("base64") })
        .where("seq", "=", 8)
        .execute()),
    /checkpoint 8 has a bad signature/,
  ],
];

describeEachFreshDb("audit tamper suite", (make, skip) => {
  test("an untouched log verifies", { skip }, async () => {
    const p = await populated(make);
    assert.ok(typeof p !== "string");
    const v = await verifyAuditLog(p.db, { ...EVERY_4, maxUnsigned: 0 });
    assert.deepEqual(v.problems, []);
    assert.equal(v.entries, 10);
    // 4 and 8 by count; 10 by the clean close, so nothing is left unsigned.
    assert.equal(v.checkpoints, 3);
    assert.equal(v.unsigned, 0);
    await sql`select 1`.execute(p.db.db);
    await p.db.close();
    await p.t.drop();
  });

  for (const [name, tamper, expected] of tampers) {
    test(`detects: ${name}`, { skip }, async () => {
      const p = await populated(make);
      assert.ok(typeof p !== "string");
      try {
        await tamper(p.db);
        const v = await verifyAuditLog(p.db, EVERY_4);
        assert.equal(v.ok, false);
        assert.ok(
          v.problems.some((x) => expected.test(x)),
          `${name}: ${v.problems.join("; ")}`,
        );
      } finally {
        await p.db.close();
        await p.t.drop();
      }
    });
  }

  test("issue #10's attack fails: checkpoint_every set to 0, checkpoints dropped, chain rewritten", {
    skip,
  }, async () => {
    // The service's default interval (64): the verifier expects it without being told.
    const p = await populated(make, 70, 64);
    assert.ok(typeof p !== "string");
    try {
      assert.deepEqual((await verifyAuditLog(p.db)).problems, []);
      await p.db.db
        .updateTable("meta")
        .set({ v: "0" })
        .where("k", "=", "checkpoint_every")
        .execute();
      await p.db.db.deleteFrom("checkpoints").execute();
      const { chainRewrite } = await import("./tamper.js");
      await chainRewrite(p.db, 2, (o) => ({ ...o, outcome: "denied" }));
      const v = await verifyAuditLog(p.db);
      assert.equal(v.ok, false);
      assert.ok(v.problems.includes("checkpoint 64 is missing (deleted)"), v.problems.join("; "));
      assert.equal(v.checkpointEvery, 64);
      // And the service refuses to run on the altered setting rather than stop signing.
      await assert.rejects(server(p.db, { checkpointEvery: 64 }), /checkpoint_every is "0"/);
    } finally {
      await p.db.close();
      await p.t.drop();
    }
  });

  test("--max-unsigned: a tail rewritten after its final checkpoint was dropped fails", {
    skip,
  }, async () => {
    const p = await populated(make);
    assert.ok(typeof p !== "string");
    try {
      await p.db.db.deleteFrom("checkpoints").where("seq", ">", 8).execute();
      const { chainRewrite } = await import("./tamper.js");
      await chainRewrite(p.db, 9, (o) => ({ ...o, outcome: "denied" }));
      // Without a bound the chain alone cannot tell (the documented limit)...
      assert.deepEqual((await verifyAuditLog(p.db, EVERY_4)).problems, []);
      // ...with one (the service was shut down cleanly, so its head was signed) it does.
      const v = await verifyAuditLog(p.db, { ...EVERY_4, maxUnsigned: 0 });
      assert.equal(v.ok, false);
      assert.deepEqual(v.problems, [
        "2 entries after checkpoint 8 are signed by no checkpoint (at most 0 allowed)",
      ]);
    } finally {
      await p.db.close();
      await p.t.drop();
    }
  });
});
