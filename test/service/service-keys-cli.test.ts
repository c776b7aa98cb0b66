/**
 * `tensorseal service keys ...` over HTTPS (dev CA) against loopback key services: one with dual
 * control off, one with `destroy=2`. A token without admin is refused (exit 8) and audited; bad
 * arguments exit 2 before any request (the audit log does not grow).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Database, verifyAuditLog } from "../../src/service/index.js";
import type { KeyRow as Key } from "../../src/service/keys/repo.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import {
  type AuditEntryView,
  type CliService,
  cliService,
  lastAuditEntry,
  token,
} from "./helpers.js";

let sb: Sandbox;
let svc: CliService;
/** The same service with dual control on for destroy. */
let dualSvc: CliService;
let db: Database;
let admin: string;
let env: NodeJS.ProcessEnv;
let dual: Database;
let dualAdmin: string;
let dualEnv: NodeJS.ProcessEnv;

const run = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
  sb.runAsync(["service", "keys", ...args], { ...env, TENSORSEAL_SERVER_TOKEN: admin, ...extra });

const auditCount = async (d: Database) =>
  Number(
    (
      await d.db
        .selectFrom("audit")
        .select((e) => e.fn.countAll().as("n"))
        .executeTakeFirstOrThrow()
    ).n,
  );

async function list(): Promise<Key[]> {
  const r = await run(["list", "--json"]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function show(name: string): Promise<Key> {
  const k = (await list()).find((x) => x.name === name);
  assert.ok(k, `${name} listed`);
  return k;
}

before(async () => {
  sb = sandbox();
  svc = await cliService(sb);
  ({ db, env } = svc);
  admin = await token(db, "admin");
  dualSvc = await cliService(sb, { approvals: { required: { destroy: 2 } } });
  dual = dualSvc.db;
  dualAdmin = await token(dual, "admin");
  dualEnv = {
    TENSORSEAL_SERVER: dualSvc.env.TENSORSEAL_SERVER,
    TENSORSEAL_SERVER_TOKEN: dualAdmin,
  };
});

after(async () => {
  sb.cleanup();
  await svc.close();
  await dualSvc.close();
});

test("create with labels and sensitivity, list, rotate, set, disable/enable, schedule/cancel destroy", async () => {
  const c = await run([
    "create",
    "llm",
    "-l",
    "team=ml",
    "-l",
    "env=dev",
    "--sensitivity",
    "confidential",
  ]);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /created key llm \(version 1\)/);
  const created = await lastAuditEntry<AuditEntryView>(db);
  assert.equal(created.action, "keys.create");
  assert.deepEqual(created.resource, {
    key: "llm",
    version: 1,
    labels: { team: "ml", env: "dev" },
    sensitivity: "confidential",
  });
  let k = await show("llm");
  assert.deepEqual(k.labels, { team: "ml", env: "dev" });
  assert.equal(k.sensitivity, "confidential");
  assert.equal(k.primaryVersion, 1);

  const table = await run(["list"]);
  assert.equal(table.status, 0, table.stderr);
  assert.deepEqual(table.stdout.trim().split("\t"), [
    "llm",
    "primary v1",
    "v1:enabled",
    "env=dev,team=ml", // the service stores labels sorted
    "confidential",
    "min decrypt v1",
    "min encrypt v1",
    "rotation -",
    "due -",
  ]);

  for (const want of [2, 3]) {
    const r = await run(["rotate", "llm"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`primary version is now ${want}`));
  }
  const s = await run([
    "set",
    "llm",
    "--min-decryption-version",
    "2",
    "--min-encryption-version",
    "3",
    "-l",
    "team=ml",
    "-l",
    "env=prod",
    "--sensitivity",
    "restricted",
    "--json",
  ]);
  assert.equal(s.status, 0, s.stderr);
  assert.equal(JSON.parse(s.stdout).minDecryptionVersion, 2);
  k = await show("llm");
  assert.equal(k.primaryVersion, 3);
  assert.equal(k.minDecryptionVersion, 2);
  assert.equal(k.minEncryptionVersion, 3);
  assert.deepEqual(k.labels, { team: "ml", env: "prod" });
  assert.equal(k.sensitivity, "restricted");

  const d = await run(["disable", "llm", "2"]);
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stdout, /version 2 of llm is now disabled/);
  assert.equal((await show("llm")).versions.find((v) => v.version === 2)?.state, "disabled");
  const e = await run(["enable", "llm", "2", "--json"]);
  assert.equal(e.status, 0, e.stderr);
  assert.equal(
    (JSON.parse(e.stdout) as Key).versions.find((v) => v.version === 2)?.state,
    "enabled",
  );

  const sd = await run(["schedule-destroy", "llm", "1", "--days", "3"]);
  assert.equal(sd.status, 0, sd.stderr);
  assert.match(sd.stdout, /version 1 of llm will be destroyed after \d{4}-\d\d-\d\dT/);
  const v1 = (await show("llm")).versions.find((v) => v.version === 1);
  assert.equal(v1?.state, "scheduled");
  const days = (Date.parse(v1?.destroyAfter ?? "") - Date.now()) / 86_400_000;
  assert.ok(days > 2.9 && days <= 3, `destroyAfter in 3 days, got ${days}`);
  const cd = await run(["cancel-destroy", "llm", "1"]);
  assert.equal(cd.status, 0, cd.stderr);
  assert.match(cd.stdout, /version 1 of llm is now disabled/);

  // The service's own refusals: exit 8 with its message.
  const missing = await run(["rotate", "nope"]);
  assert.equal(missing.status, 8, missing.stderr);
  assert.match(missing.stderr, /\/v1\/keys\/nope\/rotate/);
  const twice = await run(["create", "llm"]);
  assert.equal(twice.status, 8, twice.stderr);
});

test("schedule-destroy under dual control (destroy=2) prints an approval id; nothing scheduled yet", async () => {
  const env2 = { ...dualEnv };
  assert.equal((await run(["create", "m"], env2)).status, 0);
  assert.equal((await run(["rotate", "m"], env2)).status, 0);
  const r = await run(["schedule-destroy", "m", "1"], env2);
  assert.equal(r.status, 0, r.stderr);
  const id = /^approval (apr_\S+) pending: .* needs 2 approvals/m.exec(r.stdout)?.[1];
  assert.ok(id, r.stdout);
  assert.match(r.stdout, new RegExp(`tensorseal service approvals approve ${id}$`, "m"));
  const l = await run(["list", "--json"], env2);
  assert.equal(l.status, 0, l.stderr);
  const m = (JSON.parse(l.stdout) as Key[]).find((k) => k.name === "m");
  assert.equal(m?.versions.find((v) => v.version === 1)?.state, "enabled");
  const pending = await sb.runAsync(["service", "approvals", "show", id], { ...env, ...env2 });
  assert.equal(pending.status, 0, pending.stderr);
  assert.equal(JSON.parse(pending.stdout).state, "pending");
  const j = await run(["schedule-destroy", "m", "1", "--json"], env2);
  assert.equal(j.status, 0, j.stderr);
  assert.match(JSON.parse(j.stdout).approval, /^apr_/);
});

test("a token without admin is refused (exit 8) and audited; bad arguments exit 2 with no request", async () => {
  const reader = await token(db, "reader,wrap,unwrap,audit");
  for (const args of [["list"], ["create", "x"], ["disable", "llm", "3"]]) {
    const r = await run(args, { TENSORSEAL_SERVER_TOKEN: reader });
    assert.equal(r.status, 8, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stdout, "");
    const a = await lastAuditEntry<AuditEntryView>(db);
    assert.equal(a.action, args[0] === "list" ? "keys.list" : `keys.${args[0]}`);
    assert.equal(a.outcome, "denied");
    assert.equal(a.status, 403);
  }
  assert.equal((await show("llm")).versions.find((v) => v.version === 3)?.state, "enabled");

  const before = await auditCount(db);
  for (const args of [
    ["create", "bad name"],
    ["create", "x", "-l", "novalue"],
    ["create", "x", "-l", "=v"],
    ["create", "x", "-l", "-bad=v"],
    ["create", "x", "-l", "a=1", "-l", "a=2"],
    ["create", "x", "-l", "sensitivity=top"],
    ["create", "x", "--sensitivity", "secret"],
    ["rotate", "a/b"],
    ["set", "llm"],
    ["set", "llm", "--min-decryption-version", "0"],
    ["set", "llm", "--min-encryption-version", "x"],
    ["set", "llm", "--rotation-period", "90y"],
    ["set", "llm", "--rotation-period", "0.5d"],
    ["set", "llm", "--rotation-period", "9999999999w"],
    ["disable", "llm", "0"],
    ["enable", "llm", "-1"],
    ["cancel-destroy", "llm", "1.5"],
    ["schedule-destroy", "llm", "v1"],
    ["schedule-destroy", "llm", "1", "--days", "0"],
    ["schedule-destroy", "llm", "1", "--days", "366"],
    ["disable", "llm"],
  ]) {
    const r = await run(args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stdout, "");
  }
  assert.equal(await auditCount(db), before, "no request reached the service");
  const none = await run(["list"], { TENSORSEAL_SERVER: "" });
  assert.equal(none.status, 2, none.stderr);

  const v = await verifyAuditLog(db, { publicKey: svc.app.tensorseal.auditPublicKey });
  assert.deepEqual(v.problems, []);
});

test("set --rotation-period, list shows period and due date, rotate-due rotates the overdue keys", async () => {
  let skew = 0;
  const clocked = await cliService(sb, { now: () => Date.now() + skew });
  const t = await token(clocked.db, "admin");
  const reader = await token(clocked.db, "reader");
  const go = (args: string[], tok = t) =>
    sb.runAsync(["service", "keys", ...args], { ...clocked.env, TENSORSEAL_SERVER_TOKEN: tok });
  try {
    for (const name of ["weekly", "yearly", "never"])
      assert.equal((await go(["create", name])).status, 0);
    const w = await go(["set", "weekly", "--rotation-period", "1w", "--json"]);
    assert.equal(w.status, 0, w.stderr);
    const wk = JSON.parse(w.stdout) as Key;
    assert.equal(wk.rotationPeriod, 604_800);
    assert.equal(
      Date.parse(wk.rotationDue ?? ""),
      Date.parse(wk.versions[0]?.created ?? "") + 604_800_000,
    );
    const y = await go(["set", "yearly", "--rotation-period", "365d"]);
    assert.equal(y.status, 0, y.stderr);
    assert.match(y.stdout, /\trotation 365d\tdue \d{4}-/);
    const table = await go(["list"]);
    const rows = new Map(
      table.stdout
        .trim()
        .split("\n")
        .map((l) => l.split("\t"))
        .map((f) => [f[0], f.slice(-2)]),
    );
    assert.deepEqual(rows.get("weekly"), ["rotation 1w", `due ${wk.rotationDue}`]);
    assert.deepEqual(rows.get("never"), ["rotation -", "due -"]);
    const shown = await go(["show", "weekly"]);
    assert.equal(shown.status, 0, shown.stderr);
    assert.deepEqual(shown.stdout.trim().split("\t").slice(-2), [
      "rotation 1w",
      `due ${wk.rotationDue}`,
    ]);
    const shownJson = JSON.parse((await go(["show", "yearly", "--json"])).stdout) as Key;
    assert.equal(shownJson.rotationPeriod, 365 * 86_400);
    assert.equal((await go(["show", "nosuch"])).status, 8);

    const idle = await go(["rotate-due"]);
    assert.equal(idle.status, 0, idle.stderr);
    assert.match(idle.stdout, /rotated 0 key\(s\)/);
    skew = 8 * 86_400_000;
    const r = await go(["rotate-due", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { rotated: ["weekly"] });
    const e = await lastAuditEntry<AuditEntryView>(clocked.db);
    assert.equal(e.action, "keys.rotate-due");
    const after = (await go(["list", "--json"])).stdout;
    const byName = new Map((JSON.parse(after) as Key[]).map((k) => [k.name, k]));
    assert.equal(byName.get("weekly")?.primaryVersion, 2);
    assert.equal(byName.get("yearly")?.primaryVersion, 1);
    // Cleared with none; a reader token is refused (exit 8), nothing rotated.
    const c = await go(["set", "weekly", "--rotation-period", "none", "--json"]);
    assert.equal(JSON.parse(c.stdout).rotationPeriod, null);
    const denied = await go(["rotate-due"], reader);
    assert.equal(denied.status, 8, denied.stderr);
    assert.equal((await lastAuditEntry<AuditEntryView>(clocked.db)).outcome, "denied");
  } finally {
    await clocked.close();
  }
});
