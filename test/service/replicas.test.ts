/** Two stateless replicas on one PostgreSQL unwrapping concurrently: one linear audit chain. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { verifyAuditLog } from "../../src/service/index.js";
import { bearer, pgDb, server, token } from "./helpers.js";

const t = await pgDb();

test("two replicas, concurrent unwraps, rotation seen by both, chain verifies", {
  skip: typeof t === "string" ? t : false,
}, async () => {
  if (typeof t === "string") return;
  const dbA = await t.open();
  const dbB = await t.open();
  try {
    const [a, b] = await Promise.all([server(dbA), server(dbB)]);
    assert.equal(a.tensorseal.serverId, b.tensorseal.serverId, "replicas share one server id");
    const tok = await token(dbA, "admin,wrap,unwrap");
    const h = bearer(tok);
    await a.inject({ method: "POST", url: "/v1/keys", headers: h, payload: { name: "shared" } });
    const generate = async () =>
      (
        await a.inject({
          method: "POST",
          url: "/v1/datakeys/generate",
          headers: h,
          payload: { key: "shared" },
        })
      ).json();
    const g = await generate();
    const N = 150;
    const results = await Promise.all(
      Array.from({ length: 2 * N }, (_, i) =>
        (i % 2 ? a : b).inject({
          method: "POST",
          url: "/v1/datakeys/unwrap",
          headers: h,
          payload: { stanza: g.stanza },
        }),
      ),
    );
    for (const r of results) assert.equal(r.json().fileKey, g.fileKey);
    // A rotation through B; A wraps under v2 once its primary cache (1 s) expires.
    await b.inject({ method: "POST", url: "/v1/keys/shared/rotate", headers: h });
    await new Promise((r) => setTimeout(r, 1100));
    const g2 = await generate();
    assert.equal(g2.version, 2);
    assert.equal(
      (
        await b.inject({
          method: "POST",
          url: "/v1/datakeys/unwrap",
          headers: h,
          payload: { stanza: g2.stanza },
        })
      ).json().fileKey,
      g2.fileKey,
    );
    const v = await verifyAuditLog(dbA);
    assert.deepEqual(v.problems, []);
    assert.equal(v.entries, 2 * N + 5, "one entry per request, none lost or duplicated");
    await Promise.all([a.close(), b.close()]);
  } finally {
    await dbA.close();
    await dbB.close();
    await t.drop();
  }
});
