/**
 * `tensorseal service principals blocked|unblock` over HTTPS (dev CA) against a loopback key
 * service with anomaly auto-block: a principal blocked by a rate alert is listed; a non-admin
 * token and the blocked principal itself are refused (exit 8, audited as denials, the block
 * holds); an admin token unblocks (exit 0, audited) and access is restored.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { type Database, TokenRepo, verifyAuditLog } from "../../src/service/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import {
  bearer,
  type CliService,
  cliService,
  keyAndDataKey,
  lastAuditEntry,
  token,
} from "./helpers.js";

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);

let svc: CliService;
let db: Database;
let app: FastifyInstance;
let sb: Sandbox;
let env: NodeJS.ProcessEnv;
let admin: string;
let user: string;
let userId: string;
let stanza: unknown;
const clock = { t: T0 };

const run = (args: string[], tok: string) =>
  sb.runAsync(args, { ...env, TENSORSEAL_SERVER_TOKEN: tok });

const unwrap = () =>
  app.inject({
    method: "POST",
    url: "/v1/datakeys/unwrap",
    headers: bearer(user),
    payload: { stanza },
  });

interface Entry {
  action: string;
  outcome: string;
  status: number;
  principal: string;
  reason?: string;
  resource?: unknown;
  authz?: { decision: string };
}

before(async () => {
  sb = sandbox();
  svc = await cliService(sb, {
    now: () => clock.t,
    // Blocks quickly: after 3 minutes of history, more than max(20, 10 × baseline) in a minute.
    anomaly: { warmupMinutes: 3, minRate: 20, rateFactor: 10, firstSeen: false, autoBlock: true },
  });
  ({ db, app, env } = svc);
  admin = await token(db, "admin,wrap");
  const u = await new TokenRepo(db).create(["unwrap"]);
  user = u.token;
  userId = `token:${u.id}`;
  stanza = (await keyAndDataKey(app, admin, "m")).stanza;

  // A baseline of 2 unwraps a minute, then a burst: blocked after the alert.
  for (let m = 0; m < 4; m++) {
    for (let i = 0; i < 2; i++) assert.equal((await unwrap()).statusCode, 200);
    clock.t += 60_000;
  }
  let status = 200;
  for (let n = 0; status === 200 && n < 100; n++) status = (await unwrap()).statusCode;
  assert.equal(status, 403, "auto-blocked by the rate alert");
});

after(async () => {
  sb.cleanup();
  await svc.close();
});

test("blocked lists the auto-blocked principal; non-admin and self-unblock refused and audited; admin unblock restores", async () => {
  const listed = await run(["service", "principals", "blocked", "--json"], admin);
  assert.equal(listed.status, 0, listed.stderr);
  const blocked = JSON.parse(listed.stdout) as { principal: string; reason: string }[];
  assert.deepEqual(
    blocked.map((b) => b.principal),
    [userId],
  );
  assert.match(blocked[0]!.reason, /21 keys released in the minute/);
  const table = await run(["service", "principals", "blocked"], admin);
  assert.equal(table.status, 0, table.stderr);
  assert.equal(table.stdout.trim().split("\t")[0], userId);

  // A token without admin: neither the list nor the unblock (exit 8 = E_PROVIDER), audited.
  const other = await token(db, "unwrap,wrap,audit,reader");
  const deniedList = await run(["service", "principals", "blocked"], other);
  assert.equal(deniedList.status, 8, deniedList.stderr);
  assert.equal(deniedList.stdout, "");
  const dl = await lastAuditEntry<Entry>(db);
  assert.equal(dl.action, "principals.blocked");
  assert.equal(dl.outcome, "denied");
  assert.equal(dl.status, 403);

  const denied = await run(["service", "principals", "unblock", userId], other);
  assert.equal(denied.status, 8, denied.stderr);
  assert.match(denied.stderr, /principals\/.*unblock/);
  const d = await lastAuditEntry<Entry>(db);
  assert.equal(d.action, "principals.unblock");
  assert.equal(d.outcome, "denied");
  assert.equal(d.status, 403);
  assert.equal(d.authz?.decision, "deny");
  assert.notEqual(d.principal, userId);

  // The blocked principal cannot lift its own block either.
  const self = await run(["service", "principals", "unblock", userId], user);
  assert.equal(self.status, 8, self.stderr);
  const s = await lastAuditEntry<Entry>(db);
  assert.equal(s.action, "principals.unblock");
  assert.equal(s.outcome, "denied");
  assert.equal(s.principal, userId);
  assert.match(String(s.reason), /blocked by anomaly detection/);

  assert.equal((await unwrap()).statusCode, 403, "still blocked after the refused unblocks");

  const ok = await run(["service", "principals", "unblock", userId], admin);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /unblocked/);
  const u = await lastAuditEntry<Entry>(db);
  assert.equal(u.action, "principals.unblock");
  assert.equal(u.outcome, "allowed");
  assert.deepEqual(u.resource, { principal: userId });
  const r = await unwrap();
  assert.equal(r.statusCode, 200, r.body);

  const again = await run(["service", "principals", "unblock", userId], admin);
  assert.equal(again.status, 8, "no longer blocked: 404");
  const empty = await run(["service", "principals", "blocked", "--json"], admin);
  assert.equal(empty.status, 0, empty.stderr);
  assert.deepEqual(JSON.parse(empty.stdout), []);
  const none = await sb.runAsync(["service", "principals", "blocked"], {
    ...env,
    TENSORSEAL_SERVER: "",
  });
  assert.equal(none.status, 2, "no server: usage error");

  const v = await verifyAuditLog(db, { publicKey: app.tensorseal.auditPublicKey });
  assert.deepEqual(v.problems, []);
  assert.ok(v.ok);
});
