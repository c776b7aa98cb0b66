/**
 * Rotation periods of service keys where they are used: `doctor --server` reports a service key
 * past its own period (service.key-rotation-overdue, warning) by the rule local keys follow,
 * notes a skipped check without an admin token, and `inventory --server` lists each service
 * key's own period and due date (the default only for keys without one). A real loopback key
 * service over HTTPS; the CLI's clock is moved with TENSORSEAL_NOW.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Finding } from "../../src/doctor/index.js";
import type { Inventory } from "../../src/inventory/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { bearer, type CliService, cliService, token } from "./helpers.js";

const DAY_MS = 86_400_000;
let sb: Sandbox;
let svc: CliService;
let admin: string;
let created: number;
const later = () => new Date(created + 10 * DAY_MS).toISOString();

before(async () => {
  sb = sandbox();
  svc = await cliService(sb);
  admin = await token(svc.db, "admin");
  const call = (method: "POST" | "PATCH", url: string, payload: object) =>
    svc.app.inject({ method, url, headers: bearer(admin), payload });
  for (const name of ["weekly", "yearly", "plain"])
    assert.equal((await call("POST", "/v1/keys", { name })).statusCode, 200);
  const w = await call("PATCH", "/v1/keys/weekly", { rotationPeriod: 7 * 86400 });
  assert.equal(w.statusCode, 200, w.body);
  created = Date.parse(w.json().versions[0].created);
  await call("PATCH", "/v1/keys/yearly", { rotationPeriod: 365 * 86400 });
});

after(async () => {
  sb.cleanup();
  await svc.close();
});

const env = (tok: string | undefined) => ({
  ...svc.env,
  TENSORSEAL_NOW: later(),
  ...(tok === undefined ? {} : { TENSORSEAL_SERVER_TOKEN: tok }),
});

async function doctor(tok: string | undefined): Promise<Finding[]> {
  const r = await sb.runAsync(["doctor", "--json", "--fail-on", "none"], env(tok));
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { findings: Finding[] }).findings;
}

test("doctor --server: a service key past its own period is a warning; others are not reported", async () => {
  const f = (await doctor(admin)).filter((x) => x.id.startsWith("service.key"));
  assert.equal(f.length, 1, JSON.stringify(f));
  assert.equal(f[0]!.id, "service.key-rotation-overdue");
  assert.equal(f[0]!.severity, "warning");
  assert.match(
    f[0]!.message,
    /service key weekly: primary version 1 is (9|10) days old, past its rotation period of 7 days/,
  );
  assert.match(f[0]!.evidence, /rotationPeriod 604800s/);
  assert.match(f[0]!.fix, /service keys rotate-due/);
  // Rotated: nothing overdue any more.
  const r = await sb.runAsync(["service", "keys", "rotate-due"], env(admin));
  assert.equal(r.status, 0, r.stderr);
  // The service's clock is the real one: nothing is due there yet.
  assert.match(r.stdout, /rotated 0 key/);
});

test("doctor --server without a token, or with one that may not list keys: a note, no finding", async () => {
  for (const tok of [undefined, await token(svc.db, "reader")]) {
    const f = await doctor(tok);
    assert.deepEqual(
      f.filter((x) => x.id === "service.key-rotation-overdue"),
      [],
    );
    const note = f.filter((x) => x.id === "service.keys-unchecked");
    assert.equal(note.length, 1, JSON.stringify(f));
    assert.equal(note[0]!.severity, "note");
    assert.match(note[0]!.message, tok ? /HTTP 403/ : /no token/);
  }
});

test("inventory --server: service keys carry their own rotation period and due date", async () => {
  const r = await sb.runAsync(["inventory", "--json"], env(admin));
  assert.equal(r.status, 0, r.stderr);
  const inv = JSON.parse(r.stdout) as Inventory;
  const k = new Map(inv.keys.map((x) => [x.name, x]));
  const weekly = k.get("weekly")!;
  assert.equal(weekly.rotationPeriod, 7 * 86400);
  assert.equal(weekly.rotationDueFrom, "key");
  assert.equal(Date.parse(weekly.rotationDue!), created + 7 * DAY_MS);
  assert.equal(weekly.rotationOverdue, true);
  assert.equal(k.get("yearly")!.rotationDueFrom, "key");
  assert.equal(k.get("yearly")!.rotationOverdue, false);
  assert.equal(k.get("plain")!.rotationPeriod, null);
  assert.equal(k.get("plain")!.rotationDueFrom, "default");
});
