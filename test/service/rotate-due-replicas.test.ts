/**
 * `POST /v1/rotate-due` on two replicas at once (one PostgreSQL schema: replicas are a
 * PostgreSQL deployment; on SQLite BEGIN IMMEDIATE serialises the same check): each
 * due key gets exactly one new version, the rotated names of both answers together list each
 * key once, and every rotation has one `keys.rotate` entry. The guard is in the database: the
 * rotation is conditional on the primary version found due, checked under the key's row lock.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import type { Database } from "../../src/service/index.js";
import { bearer, pgDb, server, type TestDb, token } from "./helpers.js";

const DAY_S = 86_400;
const KEYS = ["k0", "k1", "k2", "k3", "k4", "k5"];

for (const [label, made] of [["postgres", await pgDb()]] as const) {
  describe(`rotate-due on two replicas (${label})`, {
    skip: typeof made === "string" ? made : false,
  }, () => {
    const tdb = made as TestDb;
    let dbA: Database;
    let dbB: Database;
    let a: FastifyInstance;
    let b: FastifyInstance;
    let admin: string;
    let skew = 0;

    before(async () => {
      dbA = await tdb.open();
      dbB = await tdb.open();
      const opts = { sweepEveryMs: 0, now: () => Date.now() + skew };
      a = await server(dbA, opts);
      b = await server(dbB, opts);
      admin = await token(dbA, "admin");
      for (const name of KEYS) {
        const c = await a.inject({
          method: "POST",
          url: "/v1/keys",
          headers: bearer(admin),
          payload: { name },
        });
        assert.equal(c.statusCode, 200, c.body);
        const p = await a.inject({
          method: "PATCH",
          url: `/v1/keys/${name}`,
          headers: bearer(admin),
          payload: { rotationPeriod: DAY_S },
        });
        assert.equal(p.statusCode, 200, p.body);
      }
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await dbA?.close();
      await dbB?.close();
      await tdb?.drop();
    });

    test("both replicas rotate at once: one new version per due key", async () => {
      // Versions are created at real time; the clock runs one period minus GAP ahead, so a
      // primary is due once it is GAP old: the versions a round makes are not due again within
      // that round (a replica listing late would rightly rotate them again), but are next round.
      const GAP = 3000;
      skew = DAY_S * 1000 - GAP;
      await new Promise((r) => setTimeout(r, GAP + 100));
      const rounds = 2;
      for (let round = 1; round <= rounds; round++) {
        const [ra, rb] = await Promise.all(
          [a, b].map((app) =>
            app.inject({ method: "POST", url: "/v1/rotate-due", headers: bearer(admin) }),
          ),
        );
        assert.equal(ra!.statusCode, 200, ra!.body);
        assert.equal(rb!.statusCode, 200, rb!.body);
        const all = [...ra!.json().rotated, ...rb!.json().rotated].sort();
        assert.deepEqual(all, KEYS, `round ${round}: each key rotated once, by one replica`);
        const keys = (
          await a.inject({ method: "GET", url: "/v1/keys", headers: bearer(admin) })
        ).json().keys as { name: string; primaryVersion: number; versions: unknown[] }[];
        for (const k of keys) {
          assert.equal(k.primaryVersion, round + 1, `${k.name} after round ${round}`);
          assert.equal(k.versions.length, round + 1);
        }
        if (round < rounds) await new Promise((r) => setTimeout(r, GAP + 100));
      }
      const rotations = await dbA.db
        .selectFrom("audit")
        .select("entry")
        .where("entry", "like", '%"action":"keys.rotate"%')
        .execute();
      assert.equal(rotations.length, KEYS.length * rounds, "one audit entry per rotation");
    });
  });
}
