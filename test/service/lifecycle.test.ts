/** Key lifecycle over the API (SQLite and PostgreSQL): disable/enable, minimum versions, scheduled destruction. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { verifyAuditLog } from "../../src/service/index.js";
import { describeEachDb, inject, server, token } from "./helpers.js";

const DAY = 86_400_000;

describeEachDb("key lifecycle", (suite) => {
  let app: FastifyInstance;
  let admin: string;
  let user: string;
  let clock = Date.parse("2030-01-01T00:00:00Z");

  const req = (method: "POST" | "PATCH" | "GET", url: string, t: string, payload?: unknown) =>
    inject(app, method, url, t, payload);
  const entries = async () =>
    (await suite.db.db.selectFrom("audit").select("entry").orderBy("seq").execute()).map((r) =>
      JSON.parse(r.entry),
    );

  before(async () => {
    if (suite.skip) return;
    app = await server(suite.db, { now: () => clock, sweepEveryMs: 0 });
    admin = await token(suite.db, "admin");
    user = await token(suite.db, "wrap,unwrap,rewrap");
    assert.equal((await req("POST", "/v1/keys", admin, { name: "m" })).statusCode, 200);
  });
  after(async () => {
    if (suite.skip) return;
    await app.close();
  });

  test("disable refuses unwrap (403, audited, names key/version and the fix); enable restores", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const g = (await req("POST", "/v1/datakeys/generate", user, { key: "m" })).json();
    await req("POST", "/v1/keys/m/rotate", admin);
    const d = await req("POST", "/v1/keys/m/versions/1/disable", admin);
    assert.equal(d.statusCode, 200, d.body);
    assert.equal(d.json().key.versions[0].state, "disabled");
    const u = await req("POST", "/v1/datakeys/unwrap", user, { stanza: g.stanza });
    assert.equal(u.statusCode, 403);
    assert.equal(u.json().error, "version_unavailable");
    assert.match(u.json().message, /key m version 1 is disabled.*enable.*rewrap/);
    assert.ok(!u.body.includes(g.fileKey));
    const last = (await entries()).at(-1);
    assert.equal(last.outcome, "denied");
    assert.equal(last.action, "datakeys.unwrap");
    // rewrap is refused too (it unwraps)
    assert.equal(
      (await req("POST", "/v1/datakeys/rewrap", user, { stanza: g.stanza })).statusCode,
      403,
    );
    assert.equal((await req("POST", "/v1/keys/m/versions/1/disable", admin)).statusCode, 409);
    assert.equal((await req("POST", "/v1/keys/m/versions/1/enable", admin)).statusCode, 200);
    const ok = await req("POST", "/v1/datakeys/unwrap", user, { stanza: g.stanza });
    assert.equal(ok.json().fileKey, g.fileKey);
    // the primary disabled: wrap refuses until rotation
    await req("POST", "/v1/keys/m/versions/2/disable", admin);
    const w = await req("POST", "/v1/datakeys/generate", user, { key: "m" });
    assert.equal(w.statusCode, 409);
    assert.match(w.json().message, /rotate/);
    await req("POST", "/v1/keys/m/versions/2/enable", admin);
  });

  test("minDecryptionVersion refuses older versions; limits are validated", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const g1 = (await req("POST", "/v1/datakeys/generate", user, { key: "m" })).json();
    assert.equal(g1.version, 2);
    await req("POST", "/v1/keys/m/rotate", admin); // v3
    const p = await req("PATCH", "/v1/keys/m", admin, { minDecryptionVersion: 3 });
    assert.equal(p.statusCode, 200, p.body);
    assert.equal(p.json().minDecryptionVersion, 3);
    assert.equal(p.json().minEncryptionVersion, 3);
    const u = await req("POST", "/v1/datakeys/unwrap", user, { stanza: g1.stanza });
    assert.equal(u.statusCode, 403);
    assert.match(
      u.json().message,
      /key m version 2 is below the key's minimum decryption version 3/,
    );
    assert.equal(
      (await req("PATCH", "/v1/keys/m", admin, { minDecryptionVersion: 9 })).statusCode,
      409,
    );
    assert.equal((await req("PATCH", "/v1/keys/m", admin, {})).statusCode, 400);
    assert.equal(
      (
        await req("PATCH", "/v1/keys/m", admin, {
          minDecryptionVersion: 1,
          minEncryptionVersion: 1,
        })
      ).statusCode,
      200,
    );
    assert.equal(
      (await req("POST", "/v1/datakeys/unwrap", user, { stanza: g1.stanza })).json().fileKey,
      g1.fileKey,
    );
  });

  test("schedule-destroy: refused at once, erased (crypto-shredded) after the waiting period; cancel restores as disabled", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const g = (await req("POST", "/v1/datakeys/generate", user, { key: "m" })).json();
    assert.equal(g.version, 3);
    await req("POST", "/v1/keys/m/rotate", admin); // v4 primary
    // the primary cannot be destroyed
    assert.equal(
      (await req("POST", "/v1/keys/m/versions/4/schedule-destroy", admin, {})).statusCode,
      409,
    );
    // cancel path
    const s1 = await req("POST", "/v1/keys/m/versions/1/schedule-destroy", admin, { days: 2 });
    assert.equal(s1.statusCode, 200, s1.body);
    assert.equal(s1.json().destroyAfter, new Date(clock + 2 * DAY).toISOString());
    const c = await req("POST", "/v1/keys/m/versions/1/cancel-destroy", admin);
    assert.equal(c.json().key.versions[0].state, "disabled");
    // destroy path (default 7 days)
    const s = await req("POST", "/v1/keys/m/versions/3/schedule-destroy", admin);
    assert.equal(s.statusCode, 200, s.body);
    assert.equal(s.json().destroyAfter, new Date(clock + 7 * DAY).toISOString());
    const u = await req("POST", "/v1/datakeys/unwrap", user, { stanza: g.stanza });
    assert.equal(u.statusCode, 403);
    assert.match(u.json().message, /key m version 3 is scheduled for destruction.*cancel/);
    clock += 6 * DAY;
    await req("GET", "/v1/keys", admin);
    let row = await suite.db.db
      .selectFrom("key_versions")
      .select(["state", "sealed"])
      .where("name", "=", "m")
      .where("version", "=", 3)
      .executeTakeFirstOrThrow();
    assert.equal(row.state, "scheduled");
    assert.ok(row.sealed.length > 0);
    clock += DAY + 1;
    const list = await req("GET", "/v1/keys", admin);
    assert.equal(list.json().keys[0].versions[2].state, "destroyed");
    row = await suite.db.db
      .selectFrom("key_versions")
      .select(["state", "sealed"])
      .where("name", "=", "m")
      .where("version", "=", 3)
      .executeTakeFirstOrThrow();
    assert.equal(row.sealed, "", "sealed material erased");
    const e = (await entries()).find((x) => x.action === "keys.destroy");
    assert.deepEqual(e.resource, { key: "m", version: 3, erased: true });
    assert.equal(e.principal, "system:scheduler");
    const u2 = await req("POST", "/v1/datakeys/unwrap", user, { stanza: g.stanza });
    assert.equal(u2.statusCode, 403);
    assert.match(u2.json().message, /version 3 was destroyed/);
    assert.equal(
      (await req("POST", "/v1/keys/m/versions/3/cancel-destroy", admin)).statusCode,
      409,
    );
    assert.equal((await req("POST", "/v1/keys/m/versions/3/enable", admin)).statusCode, 409);
    assert.equal((await req("POST", "/v1/keys/m/versions/99/enable", admin)).statusCode, 404);
  });

  test("lifecycle routes are admin only (Cedar) and denied requests are audited; the chain verifies", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    for (const [m, url, body] of [
      ["POST", "/v1/keys/m/versions/1/disable", undefined],
      ["POST", "/v1/keys/m/versions/1/enable", undefined],
      ["POST", "/v1/keys/m/versions/1/schedule-destroy", { days: 1 }],
      ["POST", "/v1/keys/m/versions/1/cancel-destroy", undefined],
      ["PATCH", "/v1/keys/m", { minDecryptionVersion: 1 }],
    ] as const) {
      const r = await req(m, url, user, body);
      assert.equal(r.statusCode, 403, url);
      const last = (await entries()).at(-1);
      assert.equal(last.outcome, "denied");
      assert.equal(last.authz.decision, "deny");
    }
    const v = await verifyAuditLog(suite.db);
    assert.equal(v.ok, true, JSON.stringify(v));
  });
});
