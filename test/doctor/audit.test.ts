/**
 * `doctor --db` and `doctor --server` on a real key service (HTTPS on loopback, SQLite, the dev
 * CA): the audit chain verified by the same verifier as `audit verify`; entries left without a
 * signed checkpoint past --checkpoint-days (the clock moved with TENSORSEAL_NOW); a tampered row
 * (service.audit-chain-broken); and a clean service reports none of it, nor service.tls-untrusted
 * (its certificate verifies under TENSORSEAL_SERVER_CA).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { canonical } from "../../src/service/audit/canonical.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { type CliService, cliService, token } from "../service/helpers.js";
import { type DoctorJson, of } from "./helpers.js";

const DAY = 86400_000;
const NEW = [
  "service.audit-chain-broken",
  "service.audit-checkpoint-stale",
  "service.tls-untrusted",
] as const;
let sb: Sandbox;
let svc: CliService;
let auditToken = "";

before(async () => {
  sb = sandbox();
  // No checkpoint within the suite's few entries (over the API every read appends one, so a
  // checkpoint every 4 entries would make the unsigned tail depend on timing).
  svc = await cliService(sb, { checkpointEvery: 1000 });
  const admin = await token(svc.db, "admin");
  auditToken = await token(svc.db, "audit");
  const call = (url: string) =>
    svc.app.inject({ method: "POST", url, headers: { authorization: `Bearer ${admin}` } });
  const k = await svc.app.inject({
    method: "POST",
    url: "/v1/keys",
    headers: { authorization: `Bearer ${admin}` },
    payload: { name: "w" },
  });
  assert.equal(k.statusCode, 200, k.body);
  assert.equal((await call("/v1/keys/w/rotate")).statusCode, 200);
});
after(async () => {
  await svc.close();
  sb.cleanup();
});

async function doctor(args: string[], env: NodeJS.ProcessEnv = {}): Promise<DoctorJson> {
  const r = await sb.runAsync(["doctor", "--json", "--fail-on", "none", ...args], env);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const api = (extra: NodeJS.ProcessEnv = {}) => ({
  ...svc.env,
  TENSORSEAL_SERVER_TOKEN: auditToken,
  ...extra,
});

test("a clean service: none of the audit or TLS trust findings, from --db or --server", async () => {
  for (const j of [await doctor(["--db", svc.dbUrl]), await doctor([], api())])
    for (const id of NEW) assert.deepEqual(of(j, id), [], id);
});

test("entries older than --checkpoint-days without a checkpoint: service.audit-checkpoint-stale", async () => {
  const later = { TENSORSEAL_NOW: new Date(Date.now() + 2 * DAY).toISOString() };
  for (const j of [await doctor(["--db", svc.dbUrl], later), await doctor([], api(later))]) {
    const f = of(j, "service.audit-checkpoint-stale");
    assert.deepEqual(
      f.map((x) => x.severity),
      ["warning"],
    );
    assert.match(f[0]!.evidence, /0 checkpoint\(s\); no checkpoint; \d+ unsigned entries/);
    assert.match(f[0]!.evidence, /the oldest unsigned entry was written \d{4}-/);
    assert.match(f[0]!.evidence, /limit 1 day/);
    assert.ok(!f[0]!.message.includes(auditToken) && !f[0]!.evidence.includes(auditToken));
    assert.deepEqual(of(j, "service.audit-chain-broken"), []);
  }
  // A wider limit: nothing.
  const wide = await doctor(["--db", svc.dbUrl, "--checkpoint-days", "5"], later);
  assert.deepEqual(of(wide, "service.audit-checkpoint-stale"), []);
  const bad = await sb.runAsync(["doctor", "--checkpoint-days", "soon"]);
  assert.equal(bad.status, 2, bad.stderr);
});

test("a tampered audit row: service.audit-chain-broken (critical), from --db and --server", async () => {
  // An edit that stays canonical JSON: the API still serves it, the hash no longer matches.
  const row = await svc.db.db
    .selectFrom("audit")
    .select("entry")
    .where("seq", "=", 2)
    .executeTakeFirstOrThrow();
  const edited = canonical({ ...JSON.parse(row.entry), principal: "nobody" });
  await svc.db.db.updateTable("audit").set({ entry: edited }).where("seq", "=", 2).execute();
  for (const j of [await doctor(["--db", svc.dbUrl]), await doctor([], api())]) {
    const f = of(j, "service.audit-chain-broken");
    assert.deepEqual(
      f.map((x) => x.severity),
      ["critical"],
    );
    assert.match(f[0]!.evidence, /entry 2 does not match its hash \(edited\)/);
    assert.match(f[0]!.evidence, /\d+ entries, 0 checkpoint\(s\)/);
    assert.ok(!f[0]!.evidence.includes(auditToken));
  }
  // A row that is no entry at all (as test/cli/report.test.ts tampers): from the database.
  await svc.db.db.updateTable("audit").set({ entry: "{}" }).where("seq", "=", 3).execute();
  const f = of(await doctor(["--db", svc.dbUrl]), "service.audit-chain-broken");
  assert.match(f[0]!.evidence, /entry 3 does not match its hash/);
  assert.match(f[0]!.evidence, /and \d+ more\)/);
  // The exit code: 23, critical.
  const r = await sb.runAsync(["doctor", "--db", svc.dbUrl]);
  assert.equal(r.status, 23, r.stderr);
});

test("doctor --server relays what only the service can judge: dual control off, no anchor", async () => {
  const RELAYED = ["service.dual-control-off", "service.audit-anchor-missing"] as const;
  // This suite's service runs with neither: both reported, from the service's own overview.
  const lax = await doctor([], api());
  for (const id of RELAYED) assert.equal(of(lax, id).length, 1, id);
  assert.match(of(lax, "service.audit-anchor-missing")[0]?.fix ?? "", /--checkpoint-anchor/);
  // Without a token that may read the findings: left out, no error.
  const none = await doctor([], { ...svc.env, TENSORSEAL_SERVER_TOKEN: "" });
  for (const id of RELAYED) assert.deepEqual(of(none, id), [], id);
  // A service with dual control and an anchor: neither.
  const strict = await cliService(sb, {
    approvals: { required: { destroy: 2, export: 2 } },
    checkpointAnchor: { file: `${sb.dir}/anchor.jsonl` },
  });
  try {
    const t = await token(strict.db, "audit");
    const j = await doctor([], { ...strict.env, TENSORSEAL_SERVER_TOKEN: t });
    for (const id of RELAYED) assert.deepEqual(of(j, id), [], id);
  } finally {
    await strict.close();
  }
});
