/**
 * `GET /v1/inventory` (SQLite and PostgreSQL): registered artifacts with their last release from
 * the audit (a batch unwrap counts, a refused one does not), keys with the artifacts on each
 * version for a caller who may list keys and without keys for one who may only read artifacts,
 * key and label filters, paging, and a caller without artifacts:read refused.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { serviceStanzaDigest, stanzaFromWire } from "../../src/keys/service/index.js";
import { bearer, describeEachDb, server, token } from "./helpers.js";

const FK = Buffer.alloc(32, 7).toString("base64");
const digest = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

interface Row {
  id: string;
  key: string;
  version: number;
  lastRelease: { seq: number; ts: string | null; principal: string | null } | null;
}

describeEachDb("inventory API", (suite) => {
  let app: FastifyInstance;
  const t = { admin: "", writer: "", opener: "", reader: "", worker: "" };
  const call = (method: "GET" | "POST", url: string, who: keyof typeof t, payload?: object) =>
    app.inject({ method, url, headers: bearer(t[who]), ...(payload ? { payload } : {}) });

  before(async () => {
    if (suite.skip) return;
    app = await server(suite.db, { sweepEveryMs: 0 });
    t.admin = await token(suite.db, "admin");
    t.writer = await token(suite.db, "wrap");
    t.opener = await token(suite.db, "unwrap");
    t.reader = await token(suite.db, "reader");
    t.worker = await token(suite.db, "wrap,unwrap");
    for (const name of ["alpha", "beta"])
      assert.equal((await call("POST", "/v1/keys", "admin", { name })).statusCode, 200);
    const register = async (id: string, key: string, version: number, labels = {}) => {
      const w = await call("POST", "/v1/datakeys/wrap", "writer", { key, fileKey: FK });
      assert.equal(w.statusCode, 200, w.body);
      const stanza = w.json().stanza;
      const r = await call("POST", "/v1/artifacts", "writer", {
        id,
        digest: digest(id),
        key,
        version,
        labels,
        stanzaDigest: serviceStanzaDigest(stanzaFromWire(stanza)),
      });
      assert.equal(r.statusCode, 200, r.body);
      return stanza;
    };
    const a1 = await register("model-a1", "alpha", 1, { team: "nlp" });
    await register("model-a2", "alpha", 1, { team: "vision" });
    assert.equal((await call("POST", "/v1/keys/alpha/rotate", "admin")).statusCode, 200);
    await register("model-a3", "alpha", 2);
    const b1 = await register("model-b1", "beta", 1);
    assert.equal(
      (await call("POST", "/v1/datakeys/unwrap", "opener", { stanza: a1 })).statusCode,
      200,
    );
    assert.equal(
      (await call("POST", "/v1/datakeys/unwrap-batch", "opener", { stanzas: [b1] })).statusCode,
      200,
    );
    // Refused release: must not count as a last release.
    assert.equal(
      (await call("POST", "/v1/datakeys/unwrap", "reader", { stanza: b1 })).statusCode,
      403,
    );
  });
  after(async () => {
    if (suite.skip) return;
    await app.close();
  });

  test("artifacts carry their last release; keys show how many artifacts sit on each version", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    const r = await call("GET", "/v1/inventory", "admin");
    assert.equal(r.statusCode, 200, r.body);
    const j = r.json();
    const byId = new Map<string, Row>(j.artifacts.map((a: Row) => [a.id, a]));
    assert.deepEqual([...byId.keys()].sort(), ["model-a1", "model-a2", "model-a3", "model-b1"]);
    const a1 = byId.get("model-a1")!.lastRelease;
    assert.ok(a1?.ts && a1.principal?.startsWith("token:"), JSON.stringify(a1));
    assert.ok(byId.get("model-b1")!.lastRelease, "a batch unwrap is a release");
    assert.equal(byId.get("model-a2")!.lastRelease, null);
    assert.equal(byId.get("model-a3")!.lastRelease, null);
    const alpha = j.keys.find((k: { name: string }) => k.name === "alpha");
    assert.equal(alpha.primaryVersion, 2);
    assert.deepEqual(
      alpha.versions.map((v: { version: number; artifacts: number }) => [v.version, v.artifacts]),
      [
        [1, 2],
        [2, 1],
      ],
    );
  });

  test("a reader gets artifacts without keys; a worker without artifacts:read is refused", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    const r = await call("GET", "/v1/inventory", "reader");
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().keys, undefined);
    assert.equal(r.json().artifacts.length, 4);
    assert.equal((await call("GET", "/v1/inventory", "worker")).statusCode, 403);
  });

  test("key and label filters, and paging by cursor, cover each artifact once", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    const beta = (await call("GET", "/v1/inventory?key=beta", "admin")).json();
    assert.deepEqual(
      beta.artifacts.map((a: Row) => a.id),
      ["model-b1"],
    );
    assert.deepEqual(
      beta.keys.map((k: { name: string }) => k.name),
      ["beta"],
    );
    const nlp = (await call("GET", "/v1/inventory?label=team%3Dnlp", "admin")).json();
    assert.deepEqual(
      nlp.artifacts.map((a: Row) => a.id),
      ["model-a1"],
    );
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const q = cursor ? `?limit=3&cursor=${cursor}` : "?limit=3";
      const page = (await call("GET", `/v1/inventory${q}`, "admin")).json();
      seen.push(...page.artifacts.map((a: Row) => a.id));
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, ["model-a1", "model-a2", "model-a3", "model-b1"]);
    assert.equal((await call("GET", "/v1/inventory?limit=0", "admin")).statusCode, 400);
  });
});
