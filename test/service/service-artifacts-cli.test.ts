/** `tensorseal service artifacts list|show` over HTTPS (dev CA) against a loopback key service. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import type { Database } from "../../src/service/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { bearer, type CliService, cliService, token } from "./helpers.js";

let svc: CliService;
let db: Database;
let app: FastifyInstance;
let sb: Sandbox;
let env: NodeJS.ProcessEnv;

const digest = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

const run = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
  sb.runAsync(args, { ...env, ...extra });

before(async () => {
  sb = sandbox();
  svc = await cliService(sb);
  ({ db, app } = svc);
  const admin = await token(db, "admin,wrap");
  for (const name of ["a", "b"])
    await app.inject({
      method: "POST",
      url: "/v1/keys",
      headers: bearer(admin),
      payload: { name },
    });
  for (const [id, key, team] of [
    ["m-1", "a", "ml"],
    ["m-2", "b", "ml"],
    ["m-3", "a", "ops"],
  ] as const) {
    const r = await app.inject({
      method: "POST",
      url: "/v1/artifacts",
      headers: bearer(admin),
      payload: { id, digest: digest(id), key, version: 1, labels: { team }, location: `/d/${id}` },
    });
    assert.equal(r.statusCode, 200, r.body);
  }
  env = { ...svc.env, TENSORSEAL_SERVER_TOKEN: await token(db, "reader") };
});

after(async () => {
  sb.cleanup();
  await svc.close();
});

test("service artifacts list (--key, --label, --json, table) and show over HTTPS; errors", async () => {
  const all = await run(["service", "artifacts", "list", "--json"]);
  assert.equal(all.status, 0, all.stderr);
  assert.deepEqual(
    JSON.parse(all.stdout).map((a: { id: string }) => a.id),
    ["m-1", "m-2", "m-3"],
  );
  const f = await run([
    "service",
    "artifacts",
    "list",
    "--key",
    "a",
    "--label",
    "team=ml",
    "--json",
  ]);
  assert.equal(f.status, 0, f.stderr);
  const [one, ...rest] = JSON.parse(f.stdout);
  assert.equal(rest.length, 0);
  assert.equal(one.id, "m-1");
  assert.deepEqual(one.labels, { team: "ml" });

  const table = await run(["service", "artifacts", "list", "--label", "team=ops"]);
  assert.equal(table.status, 0, table.stderr);
  assert.deepEqual(table.stdout.trim().split("\t").slice(0, 3), ["m-3", "a@v1", digest("m-3")]);

  const s = await run(["service", "artifacts", "show", "m-2"]);
  assert.equal(s.status, 0, s.stderr);
  assert.equal(JSON.parse(s.stdout).location, "/d/m-2");

  const nf = await run(["service", "artifacts", "show", "nope"]);
  assert.equal(nf.status, 8, nf.stderr); // E_PROVIDER
  assert.match(nf.stderr, /not found|nope/i);
  const denied = await run(["service", "artifacts", "list"], {
    TENSORSEAL_SERVER_TOKEN: await token(db, "unwrap"),
  });
  assert.equal(denied.status, 8);
  const noCa = await run(["service", "artifacts", "list"], { TENSORSEAL_SERVER_CA: "" });
  assert.equal(noCa.status, 8, noCa.stderr);
  assert.equal((await run(["service", "artifacts", "list", "--label", "x"])).status, 2);
  const none = await run(["service", "artifacts", "list"], { TENSORSEAL_SERVER: "" });
  assert.equal(none.status, 2, none.stderr);
});
