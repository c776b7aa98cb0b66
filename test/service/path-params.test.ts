/**
 * Every id the service hands out or accepts is usable as a path parameter: principal ids up to
 * the longest an authenticator produces (a 2048-byte SPIFFE ID, `jwt:` + a 512-character sub)
 * can be unblocked; longer ones are refused by the route's schema (400), not by the router
 * (414) or the HTTP parser (431). Wrong methods on known paths are 405 with Allow.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { BlockList } from "../../src/service/anomaly/blocks.js";
import type { Database } from "../../src/service/index.js";
import { bearer, server, sqliteDb, type TestDb, token } from "./helpers.js";

let tdb: TestDb;
let db: Database;
let app: FastifyInstance;
let admin: string;

before(async () => {
  tdb = sqliteDb();
  db = await tdb.open();
  app = await server(db);
  admin = await token(db, "admin");
});
after(async () => {
  await app.close();
  await db.close();
  await tdb.drop();
});

const spiffe = `spiffe://prod.example/${"segment-0123456789/".repeat(107)}x`.slice(0, 2048);
const jwt = `jwt:${"üser".repeat(128)}`; // a 512-character OIDC sub, not ASCII

for (const [name, id] of [
  ["a 2048-byte SPIFFE ID", spiffe],
  ["jwt: and a 512-character non-ASCII sub", jwt],
] as const) {
  test(`a blocked principal with ${name} can be unblocked`, async () => {
    assert.ok(id.length === 2048 || id.length === 516, String(id.length));
    await new BlockList(db, Date.now, 0).block(id, "test");
    const r = await app.inject({
      method: "POST",
      url: `/v1/principals/${encodeURIComponent(id)}/unblock`,
      headers: bearer(admin),
      payload: {},
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(r.json(), { principal: id, unblocked: true });
    assert.equal(await new BlockList(db, Date.now, 0).stored(id), false);
  });
}

test("a 128-character key name and an artifact id with '/' and ':' work in every path that names them", async () => {
  const wrap = await token(db, "admin,wrap,reader");
  const name = "k".repeat(128);
  const call = (method: "GET" | "POST" | "PATCH", url: string, payload?: object) =>
    app.inject({ method, url, headers: bearer(wrap), ...(payload ? { payload } : {}) });
  assert.equal((await call("POST", "/v1/keys", { name })).statusCode, 200);
  const key = encodeURIComponent(name);
  for (const [method, url, body] of [
    ["POST", `/v1/keys/${key}/rotate`, undefined],
    ["PATCH", `/v1/keys/${key}`, { minDecryptionVersion: 1 }],
    ["POST", `/v1/keys/${key}/versions/1/disable`, {}],
    ["POST", `/v1/keys/${key}/versions/1/enable`, {}],
  ] as const) {
    const r = await call(method, url, body);
    assert.equal(r.statusCode, 200, `${method} ${url}: ${r.body}`);
  }
  const id = "team-a/models:llama-3/v1";
  const digest = `sha256:${"0".repeat(64)}`;
  const reg = await call("POST", "/v1/artifacts", { id, digest, key: name, version: 2 });
  assert.equal(reg.statusCode, 200, reg.body);
  const shown = await call("GET", `/v1/artifacts/${encodeURIComponent(id)}`);
  assert.equal(shown.statusCode, 200, shown.body);
  assert.equal(shown.json().id, id);
});

test("an id beyond the limit is refused by the schema (400), even percent-encoded 4-byte UTF-8", async () => {
  for (const id of [`${spiffe}y`, "\u{10FFFF}".repeat(2049)]) {
    const r = await app.inject({
      method: "POST",
      url: `/v1/principals/${encodeURIComponent(id)}/unblock`,
      headers: bearer(admin),
      payload: {},
    });
    assert.equal(r.statusCode, 400, r.body);
    assert.equal(r.json().error, "bad_request");
  }
});

test("a known path with another method is 405 with Allow; an unknown one a JSON 404", async () => {
  const r = await app.inject({ method: "DELETE", url: "/v1/keys/m/rotate" });
  assert.equal(r.statusCode, 405);
  assert.equal(r.headers.allow, "POST");
  assert.equal(r.json().error, "method_not_allowed");
  const g = await app.inject({ method: "PUT", url: "/v1/keys" });
  assert.equal(g.headers.allow, "GET, HEAD, POST");
  // A static route's path lists its own methods, not those of the `:id` route it also matches.
  for (const url of ["/v1/artifacts/restanza", "/v1/artifacts/successors"]) {
    const o = await app.inject({ method: "OPTIONS", url });
    assert.equal(o.statusCode, 405, url);
    assert.equal(o.headers.allow, "POST", url);
  }
  const n = await app.inject({ method: "GET", url: "/v1/nothing" });
  assert.equal(n.statusCode, 404);
  assert.equal(n.json().error, "not_found");
});
