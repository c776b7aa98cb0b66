/**
 * `POST /v1/principals/:id/block` (incident containment): an admin blocks a principal, whose
 * next request is refused (403) on the spot; the block is audited before it applies, listed,
 * idempotent and liftable. A non-admin is denied (audited), a principal cannot block itself,
 * and a body that is not the schema's is refused.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { type Database, TokenRepo, verifyAuditLog } from "../../src/service/index.js";
import {
  bearer,
  inject,
  keyAndDataKey,
  lastAuditEntry,
  server,
  sqliteDb,
  type TestDb,
} from "../service/helpers.js";

let tdb: TestDb;
let db: Database;
let app: FastifyInstance;
let admin: { token: string; id: string };
let user: { token: string; id: string };
let stanza: unknown;

const block = (who: string, id: string, payload: object = { reason: "incident inc-1" }) =>
  inject(app, "POST", `/v1/principals/${encodeURIComponent(id)}/block`, who, payload);
const unwrap = () => inject(app, "POST", "/v1/datakeys/unwrap", user.token, { stanza });

before(async () => {
  tdb = sqliteDb();
  db = await tdb.open();
  app = await server(db, { sweepEveryMs: 0 });
  const repo = new TokenRepo(db);
  const a = await repo.create(["admin", "wrap"]);
  const u = await repo.create(["unwrap"]);
  admin = { token: a.token, id: `token:${a.id}` };
  user = { token: u.token, id: `token:${u.id}` };
  stanza = (await keyAndDataKey(app, admin.token, "m")).stanza;
});

after(async () => {
  await app.close();
  await db.close();
  await tdb.drop();
});

test("a non-admin cannot block (denied, audited); nothing is blocked", async () => {
  const r = await block(user.token, admin.id);
  assert.equal(r.statusCode, 403);
  const e = await lastAuditEntry<{ action: string; outcome: string }>(db);
  assert.deepEqual([e.action, e.outcome], ["principals.block", "denied"]);
  assert.equal((await unwrap()).statusCode, 200);
});

test("a principal cannot block itself; a body outside the schema is refused", async () => {
  assert.equal((await block(admin.token, admin.id)).statusCode, 409);
  assert.equal((await block(admin.token, user.id, { reason: "x", extra: 1 })).statusCode, 400);
  assert.equal((await block(admin.token, user.id, { reason: "" })).statusCode, 400);
});

test("an admin blocks: audited first, the principal is refused at once, listed, idempotent, liftable", async () => {
  const r = await block(admin.token, user.id);
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json(), { principal: user.id, blocked: true });
  const e = await lastAuditEntry<{ action: string; outcome: string; resource: unknown }>(db);
  assert.deepEqual([e.action, e.outcome], ["principals.block", "allowed"]);
  assert.deepEqual(e.resource, { principal: user.id, reason: "incident inc-1" });
  assert.equal((await unwrap()).statusCode, 403);
  assert.equal((await block(admin.token, user.id)).statusCode, 200, "idempotent");
  const list = await app.inject({ url: "/v1/principals/blocked", headers: bearer(admin.token) });
  assert.deepEqual(
    list.json().blocked.map((b: { principal: string; reason: string }) => [b.principal, b.reason]),
    [[user.id, "incident inc-1"]],
  );
  const u = await app.inject({
    method: "POST",
    url: `/v1/principals/${encodeURIComponent(user.id)}/unblock`,
    headers: bearer(admin.token),
    payload: {},
  });
  assert.equal(u.statusCode, 200);
  assert.equal((await unwrap()).statusCode, 200);
  assert.equal((await verifyAuditLog(db)).ok, true);
});
