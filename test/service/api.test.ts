/** The key service through in-process injection (SQLite): routes, schemas, auth, audit, logs. */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import type { Database } from "../../src/service/index.js";
import { TokenRepo, verifyAuditLog } from "../../src/service/index.js";
import { bearer, lastAuditEntry, server, sqliteDb, type TestDb, token } from "./helpers.js";

let tdb: TestDb;
let db: Database;
let app: FastifyInstance;
let admin: string;
let all: string;
const logs: string[] = [];

async function post(url: string, t: string | null, payload: unknown) {
  return app.inject({
    method: "POST",
    url,
    headers: t ? bearer(t) : {},
    payload: payload as object,
  });
}

const lastEntry = () => lastAuditEntry(db);

before(async () => {
  tdb = sqliteDb();
  db = await tdb.open();
  const stream = new Writable({
    write(chunk, _e, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  app = await server(db, { logger: { level: "debug", stream }, batchMax: 5 });
  admin = await token(db, "admin");
  all = await token(db, "admin,wrap,unwrap,rewrap");
  assert.equal((await post("/v1/keys", admin, { name: "model" })).statusCode, 200);
});

after(async () => {
  await app.close();
  await db.close();
  await tdb.drop();
});

describe("public routes", () => {
  test("healthz, readyz, metrics, info", async () => {
    assert.equal((await app.inject("/healthz")).json().status, "ok");
    assert.equal((await app.inject("/readyz")).json().status, "ready");
    const m = await app.inject("/metrics");
    assert.match(m.headers["content-type"] as string, /^text\/plain/);
    assert.match(m.body, /# TYPE tensorseal_unwrap_duration_seconds histogram/);
    assert.match((await app.inject("/v1/info")).json().serverId, /^ts-[0-9a-f]{24}$/);
  });

  test("OpenAPI document served; every route has a response schema, every POST a body schema", async () => {
    const doc = (await app.inject("/openapi.json")).json();
    assert.equal(doc.openapi, "3.1.0");
    const paths = Object.keys(doc.paths);
    for (const p of [
      "/v1/keys",
      "/v1/datakeys/unwrap",
      "/v1/datakeys/unwrap-batch",
      "/v1/datakeys/rewrap",
      "/metrics",
    ]) {
      assert.ok(paths.includes(p), p);
    }
    for (const [p, ops] of Object.entries(
      doc.paths as Record<string, Record<string, { responses?: object; requestBody?: object }>>,
    )) {
      for (const [method, op] of Object.entries(ops)) {
        assert.ok(op.responses && "200" in op.responses, `${method} ${p} has a 200 schema`);
        if (method === "post" && !p.endsWith("/rotate"))
          assert.ok(op.requestBody, `${method} ${p} has a body schema`);
      }
    }
  });
});

describe("keys and data keys", () => {
  test("generate, unwrap, rotate, rewrap to the new primary; the old stanza still unwraps", async () => {
    const g = (await post("/v1/datakeys/generate", all, { key: "model" })).json();
    assert.equal(g.version, 1);
    assert.equal(
      (await post("/v1/datakeys/unwrap", all, { stanza: g.stanza })).json().fileKey,
      g.fileKey,
    );
    const rot = await app.inject({
      method: "POST",
      url: "/v1/keys/model/rotate",
      headers: bearer(admin),
    });
    assert.equal(rot.json().primaryVersion, 2);
    const rw = await post("/v1/datakeys/rewrap", all, { stanza: g.stanza });
    assert.equal(rw.statusCode, 200);
    assert.equal(rw.json().version, 2);
    assert.ok(!rw.body.includes(g.fileKey), "rewrap never returns the file key");
    assert.equal(
      (await post("/v1/datakeys/unwrap", all, { stanza: rw.json().stanza })).json().fileKey,
      g.fileKey,
    );
    assert.equal(
      (await post("/v1/datakeys/unwrap", all, { stanza: g.stanza })).json().fileKey,
      g.fileKey,
    );
    const list = await app.inject({ method: "GET", url: "/v1/keys", headers: bearer(admin) });
    assert.deepEqual(
      list.json().keys[0].versions.map((v: { version: number }) => v.version),
      [1, 2],
    );
    assert.equal((await post("/v1/keys", admin, { name: "model" })).statusCode, 409);
  });

  test("a modified stanza is 422, another server's is 404, malformed content is 422, off-schema 400", async () => {
    const g = (await post("/v1/datakeys/generate", all, { key: "model" })).json();
    const bad = structuredClone(g.stanza);
    const w = Buffer.from(bad.fields[4], "base64");
    w[0]! ^= 1;
    bad.fields[4] = w.toString("base64");
    assert.equal((await post("/v1/datakeys/unwrap", all, { stanza: bad })).statusCode, 422);
    const other = structuredClone(g.stanza);
    other.fields[0] = Buffer.from("ts-elsewhere").toString("base64");
    assert.equal(
      (await post("/v1/datakeys/unwrap", all, { stanza: other })).json().error,
      "not_mine",
    );
    assert.equal(
      (await post("/v1/datakeys/unwrap", all, { stanza: { type: "service", fields: ["AA=="] } }))
        .statusCode,
      422,
    );
    assert.equal(
      (await post("/v1/datakeys/unwrap", all, { stanza: g.stanza, extra: 1 })).statusCode,
      400,
    );
  });

  test("batch unwrap: per-item results, one audit entry, limit enforced", async () => {
    const gs = await Promise.all(
      [1, 2, 3, 4].map(async () =>
        (await post("/v1/datakeys/generate", all, { key: "model" })).json(),
      ),
    );
    const bad = structuredClone(gs[0].stanza);
    bad.fields[3] = Buffer.alloc(12).toString("base64");
    const r = await post("/v1/datakeys/unwrap-batch", all, {
      stanzas: [...gs.map((g) => g.stanza), bad],
    });
    assert.equal(r.statusCode, 200);
    const res = r.json().results;
    assert.deepEqual(
      res.slice(0, 4).map((x: { fileKey: string }) => x.fileKey),
      gs.map((g) => g.fileKey),
    );
    assert.equal(res[4].error, "does_not_open");
    const e = await lastEntry();
    assert.equal(e.action, "datakeys.unwrap-batch");
    assert.deepEqual((e.resource as { ok: number; failed: number }).ok, 4);
    const six = Array(6).fill(gs[0].stanza);
    assert.equal((await post("/v1/datakeys/unwrap-batch", all, { stanzas: six })).statusCode, 400);
  });
});

describe("authentication and scopes: every refusal is denied and audited", () => {
  const cases: [string, () => Record<string, string>, number, string][] = [
    ["no token", () => ({}), 401, "no credentials"],
    [
      "malformed header",
      () => ({ authorization: "Basic abc" }),
      401,
      "malformed Authorization header",
    ],
    ["unknown token", () => bearer(`tsk_${"A".repeat(43)}`), 401, "unknown or revoked token"],
    ["malformed token", () => bearer("tsk_short"), 401, "malformed token"],
    [
      "wrong scope",
      () => bearer(admin),
      403,
      "no policy permits unwrap on key model (default deny)",
    ],
  ];
  for (const [name, headers, status, reason] of cases) {
    test(name, async () => {
      const g = (await post("/v1/datakeys/generate", all, { key: "model" })).json();
      const r = await app.inject({
        method: "POST",
        url: "/v1/datakeys/unwrap",
        headers: headers(),
        payload: { stanza: g.stanza },
      });
      assert.equal(r.statusCode, status);
      assert.ok(!r.body.includes(g.fileKey));
      const e = await lastEntry();
      assert.equal(e.outcome, "denied");
      assert.equal(e.status, status);
      assert.equal(e.reason, reason);
      assert.equal(e.action, "datakeys.unwrap");
      if (name === "unknown token") assert.match(String(e.principal), /^token-hmac:[0-9a-f]{16}$/);
    });
  }

  test("a revoked token is refused", async () => {
    const repo = new TokenRepo(db);
    const t = await repo.create(["unwrap"]);
    await repo.revoke(t.id);
    const r = await post("/v1/datakeys/unwrap", t.token, {
      stanza: { type: "service", fields: [] },
    });
    assert.equal(r.statusCode, 401);
  });
});

describe("errors, logs and fail-closed audit", () => {
  test("5xx details are hidden from clients", async () => {
    const tdb2 = sqliteDb();
    const db2 = await tdb2.open();
    const app2 = await server(db2, {
      authenticators: [
        { authenticate: async () => Promise.reject(new Error("db password hunter2 leaked")) },
      ],
    });
    const r = await app2.inject({ method: "GET", url: "/v1/keys", headers: bearer(all) });
    assert.equal(r.statusCode, 500);
    assert.ok(!r.body.includes("hunter2"));
    assert.match(r.json().message, /^internal error \(request /);
    await app2.close();
    await db2.close();
    await tdb2.drop();
  });

  test("no audit write, no key release (injected failing sink and a broken audit table)", async () => {
    const g = (await post("/v1/datakeys/generate", all, { key: "model" })).json();
    const tdb2 = sqliteDb();
    const db2 = await tdb2.open();
    const failing = await server(db, {
      auditSink: { append: async () => Promise.reject(new Error("disk full")) },
    });
    const r = await failing.inject({
      method: "POST",
      url: "/v1/datakeys/unwrap",
      headers: bearer(all),
      payload: { stanza: g.stanza },
    });
    assert.equal(r.statusCode, 503);
    assert.equal(r.json().error, "audit_unavailable");
    assert.ok(!r.body.includes(g.fileKey));
    await failing.close();
    // The real store with its table gone: the insert fails, the key is not released.
    await db.db.schema.alterTable("audit").renameTo("audit_gone").execute();
    try {
      const r2 = await post("/v1/datakeys/unwrap", all, { stanza: g.stanza });
      assert.equal(r2.statusCode, 503);
      assert.ok(!r2.body.includes(g.fileKey));
      const r3 = await post("/v1/datakeys/generate", all, { key: "model" });
      assert.equal(r3.statusCode, 503);
      assert.ok(!("fileKey" in r3.json()));
    } finally {
      await db.db.schema.alterTable("audit_gone").renameTo("audit").execute();
    }
    await db2.close();
    await tdb2.drop();
  });

  test("logs hold no token, file key or stanza bytes; the audit chain verifies", async () => {
    const g = (await post("/v1/datakeys/generate", all, { key: "model" })).json();
    await post("/v1/datakeys/unwrap", all, { stanza: g.stanza });
    await post("/v1/datakeys/unwrap", `tsk_${"B".repeat(43)}`, { stanza: g.stanza });
    const text = logs.join("");
    assert.ok(text.includes('"route":"/v1/datakeys/unwrap"'), "request lines are logged");
    for (const secret of [all, admin, g.fileKey, g.stanza.fields[4], "B".repeat(43)]) {
      assert.ok(!text.includes(secret), "a secret reached the log");
    }
    const audit = (await db.db.selectFrom("audit").select("entry").execute())
      .map((r) => r.entry)
      .join("\n");
    for (const secret of [all, admin, g.fileKey, "B".repeat(43)])
      assert.ok(!audit.includes(secret));
    const v = await verifyAuditLog(db);
    assert.deepEqual(v.problems, []);
    assert.ok(v.checkpoints >= 5);
  });
});
