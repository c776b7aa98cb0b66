/**
 * `incident from-alerts`: a rate alert of the key service's anomaly detection (a principal's
 * burst of unwraps against its baseline, on an injected clock) opens one principal incident
 * with the alert's time as detection time; `--contain` blocks the principal at once; a rerun
 * opens nothing more for the same principal.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { type Database, TokenRepo } from "../../src/service/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { type CliService, cliService, inject, keyAndDataKey, token } from "../service/helpers.js";

// An hour ago: the alert's time is the incident's detection time, which may not be in the future.
const clock = { t: Date.now() - 3_600_000 };
let svc: CliService;
let db: Database;
let app: FastifyInstance;
let sb: Sandbox;
let admin: string;
let user: { token: string; id: string };
let stanza: unknown;

const unwrap = () => inject(app, "POST", "/v1/datakeys/unwrap", user.token, { stanza });

before(async () => {
  sb = sandbox();
  svc = await cliService(sb, {
    now: () => clock.t,
    anomaly: { warmupMinutes: 3, minRate: 20, rateFactor: 10, firstSeen: false },
  });
  ({ db, app } = svc);
  admin = await token(db, "admin,wrap,audit");
  const u = await new TokenRepo(db).create(["unwrap"]);
  user = { token: u.token, id: `token:${u.id}` };
  stanza = (await keyAndDataKey(app, admin, "m")).stanza;
  for (let m = 0; m < 4; m++) {
    for (let i = 0; i < 2; i++) assert.equal((await unwrap()).statusCode, 200);
    clock.t += 60_000;
  }
  for (let n = 0; n < 30; n++) assert.equal((await unwrap()).statusCode, 200);
});

after(async () => {
  sb.cleanup();
  await svc.close();
});

test("a rate alert opens a principal incident; --contain blocks it and revokes its token; a rerun opens nothing more", async () => {
  const env = { ...svc.env, TENSORSEAL_SERVER_TOKEN: admin };
  const r = await sb.runAsync(["incident", "from-alerts", "--contain", "--json"], env);
  assert.equal(r.status, 0, r.stderr);
  const opened = JSON.parse(r.stdout);
  assert.equal(opened.length, 1);
  const id = opened[0].id;
  const rec = JSON.parse(
    readFileSync(join(sb.env.TENSORSEAL_HOME!, "incidents", `${id}.json`), "utf8"),
  );
  assert.equal(rec.scopeText, `principal:${user.id}`);
  assert.equal(rec.state, "contained");
  assert.match(rec.reason, /^alert\.rate /);
  assert.ok(Date.parse(rec.times.detected) < Date.parse(rec.times.opened));
  // Contained: refused — 401 once the token's revocation is seen, 403 (the block) while the
  // authenticator's positive cache still knows the token (up to 2 s).
  const refused = (await unwrap()).statusCode;
  assert.ok(refused === 401 || refused === 403, `contained: refused, got ${refused}`);
  const row = (await new TokenRepo(db).list()).find((x) => `token:${x.id}` === user.id);
  assert.ok(row?.revoked, "contained: the principal's token is revoked");

  const again = await sb.runAsync(["incident", "from-alerts", "--json"], env);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout), []);
});
