/**
 * Endpoint and artifact incidents against a key service on loopback (HTTPS, dev CA, SQLite):
 * an endpoint incident blocks every principal that received file keys from the address and
 * reseals what they opened; an artifact incident (a file key seen in a log) reseals that one
 * artifact and leaves the others alone.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { type Database, ensureDevTls, TokenRepo } from "../../src/service/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { bearer, server, sqliteDb, type TestDb } from "../service/helpers.js";

let tdb: TestDb;
let db: Database;
let app: FastifyInstance;
let s: Sandbox;
let base: NodeJS.ProcessEnv;
const tok: Record<string, { token: string; id: string }> = {};
let dir: string;
const files: Record<string, string> = {};
const artifacts: Record<string, string> = {};

const cli = (args: string[], who: string) =>
  s.runAsync(args, { ...base, TENSORSEAL_SERVER_TOKEN: tok[who]!.token });
const ok = async (args: string[], who = "admin") => {
  const r = await cli(args, who);
  assert.equal(r.status, 0, `${args.join(" ")}: ${r.stderr}`);
  return r;
};
const record = (id: string) =>
  JSON.parse(readFileSync(join(s.env.TENSORSEAL_HOME!, "incidents", `${id}.json`), "utf8"));

before(async () => {
  tdb = sqliteDb();
  db = await tdb.open();
  s = sandbox();
  assert.equal(s.run(["init"]).status, 0);
  const dev = await ensureDevTls(join(s.dir, "srv"));
  app = await server(db, { sweepEveryMs: 0, tls: dev });
  base = {
    TENSORSEAL_SERVER: await app.listen({ host: "127.0.0.1", port: 0 }),
    TENSORSEAL_SERVER_CA: dev.caPath,
  };
  const repo = new TokenRepo(db);
  for (const [name, scopes] of [
    ["admin", ["admin", "wrap", "unwrap", "rewrap", "audit"]],
    ["writer", ["wrap", "unwrap"]],
  ] as const) {
    const c = await repo.create([...scopes]);
    tok[name] = { token: c.token, id: `token:${c.id}` };
  }
  await app.inject({
    method: "POST",
    url: "/v1/keys",
    headers: bearer(tok.admin!.token),
    payload: { name: "w" },
  });
  dir = join(s.dir, "m");
  mkdirSync(dir);
  for (const n of ["a", "b"]) {
    writeFileSync(join(dir, `${n}.bin`), randomBytes(30_000));
    files[n] = join(dir, `${n}.tseal`);
    const r = await ok(
      ["seal", join(dir, `${n}.bin`), "-r", "service:w", "-o", files[n]!, "--register", "--json"],
      "writer",
    );
    artifacts[n] = JSON.parse(r.stdout).artifacts[0];
  }
});

after(async () => {
  s.cleanup();
  await app.close();
  await db.close();
  await tdb.drop();
});

test("artifact scope: only that artifact is resealed", async () => {
  const id = (
    await ok(["incident", "open", "--scope", `artifact:${artifacts.a}`, "--reason", "key in a log"])
  ).stdout.trim();
  assert.equal(record(id).severity, "medium");
  await ok(["incident", "contain", id]);
  assert.equal(record(id).actions[0].id, "note");
  const a = JSON.parse((await ok(["incident", "assess", id, dir, "--json"])).stdout);
  assert.deepEqual(
    a.files.map((f: { file: string; class: string }) => [f.file, f.class]),
    [[files.a, "exposed"]],
  );
  const bBefore = readFileSync(files.b!);
  await ok(["incident", "eradicate", id, dir]);
  assert.deepEqual(
    record(id).files.map((f: { file: string; outcome: string }) => [f.file, f.outcome]),
    [[files.a, "resealed"]],
  );
  assert.deepEqual(readFileSync(files.b!), bBefore, "the other artifact is untouched");
  assert.equal(record(id).state, "eradicated");
});

test("endpoint scope: every principal that got keys from the address is blocked", async () => {
  await ok(["open", files.b!, "-o", join(s.dir, "b.out")], "writer");
  const id = (
    await ok(["incident", "open", "--scope", "endpoint:127.0.0.1", "--reason", "host compromised"])
  ).stdout.trim();
  await ok(["incident", "contain", id]);
  const act = record(id).actions.find((x: { id: string }) => x.id === "contain:principals");
  // The writer received keys from there; the responder (admin) resealed `a` from there too,
  // and cannot contain itself: left out and named, not a failure.
  assert.equal(act.state, "done");
  assert.deepEqual(act.detail.principals.sort(), [tok.admin!.id, tok.writer!.id].sort());
  assert.deepEqual(act.detail.skipped, [tok.admin!.id]);
  assert.deepEqual(
    act.detail.contained.map((c: { principal: string; tokenRevoked: boolean }) => [
      c.principal,
      c.tokenRevoked,
    ]),
    [[tok.writer!.id, true]],
  );
  const refused = await cli(["open", files.b!, "-o", join(s.dir, "b2.out")], "writer");
  assert.equal(refused.status, 8);
  const a = JSON.parse((await ok(["incident", "assess", id, dir, "--json"])).stdout);
  assert.ok(a.principals.includes(tok.writer!.id));
  assert.deepEqual(a.endpoints, ["127.0.0.1"]);
  await ok(["incident", "eradicate", id, dir]);
  assert.equal(record(id).state, "eradicated");
});
