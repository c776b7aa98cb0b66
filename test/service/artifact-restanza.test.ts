/**
 * POST /v1/artifacts/:id/restanza (SQLite and PostgreSQL): a registration moves only to a
 * stanza holding the same file key as the registered one (a rewrap of it); a `from` that is not
 * the registered stanza, a `to` registered elsewhere, another file's stanza, a token without
 * the wrap scope and a second move are refused, the registry unchanged; an allowed move is
 * audited and the new stanza's unwraps are decided with the artifact. POST
 * /v1/artifacts/restanza finds the artifact by its registered stanza (404 when none).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { serviceStanzaDigest, stanzaFromWire } from "../../src/keys/service/index.js";
import {
  type AuditEntryView,
  bearer,
  describeEachDb,
  lastAuditEntry,
  server,
  token,
} from "./helpers.js";

type Wire = { type: string; fields: string[] };

describeEachDb("artifact registrations follow a rewrap", (suite) => {
  let app: FastifyInstance;
  let admin: string;
  let s1: Wire;
  let s2: Wire;
  let s2b: Wire;
  let other: Wire;

  const post = (url: string, payload: object, t = admin) =>
    app.inject({ method: "POST", url, headers: bearer(t), payload });
  const digest = (w: Wire) => serviceStanzaDigest(stanzaFromWire(w));
  const version = async (id: string) =>
    (await app.inject({ method: "GET", url: `/v1/artifacts/${id}`, headers: bearer(admin) })).json()
      .version;

  before(async () => {
    if (suite.skip) return;
    app = await server(suite.db, { sweepEveryMs: 0 });
    admin = await token(suite.db, "admin,wrap,unwrap,rewrap");
    assert.equal((await post("/v1/keys", { name: "m" })).statusCode, 200);
    s1 = (await post("/v1/datakeys/generate", { key: "m" })).json().stanza;
    other = (await post("/v1/datakeys/generate", { key: "m" })).json().stanza;
    assert.equal((await post("/v1/keys/m/rotate", {})).statusCode, 200);
    s2 = (await post("/v1/datakeys/rewrap", { stanza: s1 })).json().stanza;
    s2b = (await post("/v1/datakeys/rewrap", { stanza: s1 })).json().stanza;
    const reg = (id: string, w: Wire, v: number) =>
      post("/v1/artifacts", {
        id,
        digest: `sha256:${"a".repeat(64)}`,
        key: "m",
        version: v,
        labels: { team: "ml" },
        stanzaDigest: digest(w),
      });
    assert.equal((await reg("model", s1, 1)).statusCode, 200);
    // Someone registered the second rewrap of the same file key under another id.
    assert.equal((await reg("squatter", s2b, 2)).statusCode, 200);
  });
  after(async () => {
    if (suite.skip) return;
    await app.close();
  });

  test("refusals leave the registration where it is", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const cases: [object, number, RegExp, string?][] = [
      [{ from: s1, to: other }, 422, /do not hold the same file key/],
      [{ from: other, to: s2 }, 409, /not registered with the stanza given as from/],
      [{ from: s1, to: s2b }, 409, /already registered/],
      [{ from: s1, to: s2 }, 403, /./, await token(suite.db, "unwrap,rewrap")],
    ];
    for (const [body, status, re, tok] of cases) {
      const r = await post("/v1/artifacts/model/restanza", body, tok);
      assert.equal(r.statusCode, status, r.body);
      assert.match(r.json().message, re);
      const e = await lastAuditEntry<AuditEntryView>(suite.db);
      assert.equal(e.action, "artifacts.restanza");
      assert.equal(e.outcome, status === 403 ? "denied" : "error");
      assert.equal(await version("model"), 1);
    }
    const none = await post("/v1/artifacts/nope/restanza", { from: s1, to: s2 });
    assert.ok([403, 404].includes(none.statusCode), none.body);
  });

  test("a rewrap's stanza takes the registration over, once", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const r = await post("/v1/artifacts/model/restanza", { from: s1, to: s2 });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().version, 2);
    assert.deepEqual(r.json().labels, { team: "ml" });
    const e = await lastAuditEntry<AuditEntryView>(suite.db);
    assert.equal(e.action, "artifacts.restanza");
    assert.equal(e.outcome, "allowed");
    assert.deepEqual((e.resource as { to: { version: number } }).to.version, 2);
    const again = await post("/v1/artifacts/model/restanza", { from: s1, to: s2 });
    assert.equal(again.statusCode, 409, again.body);
    // The new stanza's unwrap is decided with the artifact (the audit index names it).
    const u = await post("/v1/datakeys/unwrap", { stanza: s2 });
    assert.equal(u.statusCode, 200, u.body);
    const q = await app.inject({
      method: "GET",
      url: "/v1/audit?artifact=model&action=datakeys.unwrap",
      headers: bearer(await token(suite.db, "audit")),
    });
    assert.equal(q.statusCode, 200, q.body);
    assert.equal(q.json().entries.length, 1, q.body);
  });

  test("by stanza (a plain rewrap knows no id): 404 unregistered, refusals, then the move", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const s3 = (await post("/v1/datakeys/generate", { key: "m" })).json().stanza;
    const loose = (await post("/v1/datakeys/generate", { key: "m" })).json().stanza;
    const r0 = await post("/v1/artifacts", {
      id: "bystanza",
      digest: `sha256:${"b".repeat(64)}`,
      key: "m",
      version: 2,
      stanzaDigest: digest(s3),
    });
    assert.equal(r0.statusCode, 200, r0.body);
    assert.equal((await post("/v1/keys/m/rotate", {})).statusCode, 200);
    const s4 = (await post("/v1/datakeys/rewrap", { stanza: s3 })).json().stanza;
    const cases: [object, number, RegExp, string?][] = [
      [{ from: loose, to: s4 }, 404, /no artifact is registered with the stanza given as from/],
      [{ from: s3, to: loose }, 422, /do not hold the same file key/],
      [{ from: s3, to: s4 }, 403, /./, await token(suite.db, "unwrap,rewrap")],
    ];
    for (const [body, status, re, tok] of cases) {
      const r = await post("/v1/artifacts/restanza", body, tok);
      assert.equal(r.statusCode, status, r.body);
      assert.match(r.json().message, re);
      const e = await lastAuditEntry<AuditEntryView>(suite.db);
      assert.equal(e.action, "artifacts.restanza");
      assert.equal(await version("bystanza"), 2);
    }
    const r = await post("/v1/artifacts/restanza", { from: s3, to: s4 });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().id, "bystanza");
    assert.equal(r.json().version, 3);
    const e = await lastAuditEntry<AuditEntryView>(suite.db);
    assert.equal(e.action, "artifacts.restanza");
    assert.equal(e.outcome, "allowed");
    // Moved: the old stanza is registered nowhere now.
    assert.equal((await post("/v1/artifacts/restanza", { from: s3, to: s4 })).statusCode, 404);
  });
});
