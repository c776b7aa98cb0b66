/**
 * The service root's test recovery: `service root shares verify` → POST /v1/root/shares/verify
 * on a real loopback service (SQLite). Success and every failure (too few, another root, two
 * splits, a tampered share) are audited as root.shares-verified with the split and indices and
 * no secret; the overview's root.shares-untested judges the newest one, and doctor --server
 * relays it. A caller without the right is refused and that refusal is no rehearsal.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { judgeServiceShares } from "../../src/doctor/check-service-shares.js";
import { formatShare, type RootShare } from "../../src/keys/root-shares.js";
import { splitServiceRoot } from "../../src/service/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { type CliService, cliService, lastAuditEntry, ROOT, token } from "./helpers.js";

let s: Sandbox;
let svc: CliService;
let admin: string;
let split: RootShare[];
let other: RootShare[];
const secrets: string[] = [];

function write(name: string, sh: RootShare): string {
  const f = join(s.dir, "shares", name);
  writeFileSync(f, formatShare(sh), { mode: 0o600 });
  secrets.push(sh.share.toString("base64"), sh.share.toString("hex"));
  return f;
}

before(async () => {
  s = sandbox();
  svc = await cliService(s);
  admin = await token(svc.db, "admin");
  mkdirSync(join(s.dir, "shares"));
  split = await splitServiceRoot(Buffer.from(ROOT), 3, 2);
  other = await splitServiceRoot(Buffer.from(ROOT), 3, 2);
  secrets.push(ROOT.toString("hex"), ROOT.toString("base64"));
});
after(async () => {
  await svc?.close();
  s.cleanup();
});

const verify = (files: string[], tok = admin, json = false) =>
  s.runAsync(["service", "root", "shares", "verify", ...files, ...(json ? ["--json"] : [])], {
    ...svc.env,
    TENSORSEAL_SERVER_TOKEN: tok,
  });

async function overviewFindings() {
  const r = await svc.app.inject({
    method: "GET",
    url: "/v1/overview",
    headers: { authorization: `Bearer ${admin}` },
  });
  assert.equal(r.statusCode, 200, r.body);
  return (r.json().findings as { id: string; message: string; evidence: string }[]).filter(
    (f) => f.id === "root.shares-untested",
  );
}

async function auditText(): Promise<string> {
  const rows = await svc.db.db.selectFrom("audit").select("entry").execute();
  return rows.map((r) => r.entry).join("\n");
}

/**
 * The newest audit entry is a root.shares-verified of `split` with these share indices:
 * allowed when the root was recovered, an error when it failed.
 */
async function assertSharesAudit(result: "recovered" | "failed", shares: number[]): Promise<void> {
  const e = await lastAuditEntry<{
    action: string;
    outcome: string;
    resource: Record<string, unknown>;
  }>(svc.db);
  assert.equal(e.action, "root.shares-verified");
  assert.equal(e.outcome, result === "recovered" ? "allowed" : "error");
  assert.deepEqual(e.resource, {
    result,
    split: split[0]!.splitId,
    shares,
    threshold: 2,
    total: 3,
  });
}

function assertNoSecret(texts: string[]): void {
  for (const t of texts) for (const sec of secrets) assert.ok(!t.includes(sec), "a secret leaked");
}

test("no share event yet: the overview reports nothing", async () => {
  assert.deepEqual(await overviewFindings(), []);
});

test("a refused caller (unwrap token) is denied and is no rehearsal", async () => {
  const r = await verify(
    [write("a1", split[0]!), write("a2", split[1]!)],
    await token(svc.db, "unwrap"),
  );
  assert.equal(r.status, 8, r.stderr);
  assert.match(r.stderr, /no policy permits root:verify-shares on the service/);
  assert.deepEqual(await overviewFindings(), []);
});

test("too few shares: exit 6, audited as failed; the overview says never test-recovered", async () => {
  const r = await verify([write("a1", split[0]!)]);
  assert.equal(r.status, 6, r.stderr);
  assert.match(
    r.stderr,
    /test recovery failed on .*1 share\(s\) given, but this split needs 2 of 3/,
  );
  await assertSharesAudit("failed", [1]);
  const f = await overviewFindings();
  assert.equal(f.length, 1);
  assert.equal(
    f[0]!.message,
    `the service root's shares (split ${split[0]!.splitId}) were never test-recovered: the last attempt failed`,
  );
  // doctor --server relays the service's own judgement.
  const d = await s.runAsync(["doctor", "--json", "--fail-on", "none"], {
    ...svc.env,
    TENSORSEAL_SERVER_TOKEN: admin,
  });
  assert.equal(d.status, 0, d.stderr);
  const relayed = (JSON.parse(d.stdout).findings as { id: string; message: string }[]).filter(
    (x) => x.id === "root.shares-untested",
  );
  assert.deepEqual(
    relayed.map((x) => x.message),
    [f[0]!.message],
  );
  assertNoSecret([r.stdout, r.stderr, d.stdout, d.stderr]);
});

test("shares of another root, of two splits, or tampered: exit 6, each audited as failed", async () => {
  const foreign = await splitServiceRoot(randomBytes(32), 3, 2);
  const f = await verify([write("f1", foreign[0]!), write("f2", foreign[1]!)]);
  assert.equal(f.status, 6);
  assert.match(f.stderr, /the shares belong to root [0-9a-f]{32}, not to this service's root/);
  const mixed = await verify([write("a1", split[0]!), write("b2", other[1]!)]);
  assert.equal(mixed.status, 6);
  assert.match(mixed.stderr, /comes from another split/);
  const bytes = Buffer.from(split[2]!.share);
  bytes[5]! ^= 0x40;
  const tampered = formatShare({ ...split[2]!, share: bytes });
  writeFileSync(join(s.dir, "shares", "t3"), tampered);
  secrets.push(bytes.toString("base64"));
  const t = await verify([write("a1", split[0]!), join(s.dir, "shares", "t3")]);
  assert.equal(t.status, 6);
  assert.match(t.stderr, /do not rebuild this service's root/);
  // Index 2 carrying share 1's x-coordinate: the library refuses it; a 422, never a 500.
  const sameX = Buffer.from(split[1]!.share);
  sameX[32] = split[0]!.share[32]!;
  writeFileSync(join(s.dir, "shares", "x2"), formatShare({ ...split[1]!, share: sameX }));
  secrets.push(sameX.toString("base64"));
  const x = await verify([write("a1", split[0]!), join(s.dir, "shares", "x2")]);
  assert.equal(x.status, 6, x.stderr);
  assert.match(x.stderr, /the shares cannot be combined/);
  const e = await lastAuditEntry<{ outcome: string; resource: { result: string } }>(svc.db);
  assert.equal(e.outcome, "error");
  assert.equal(e.resource.result, "failed");
  assertNoSecret([await auditText(), f.stderr, mixed.stderr, t.stderr, t.stdout, x.stderr]);
});

test("a successful test recovery: exit 0, audited without a secret; the finding is gone", async () => {
  const r = await verify([write("a1", split[0]!), write("a3", split[2]!)], admin, true);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    verified: true,
    split: split[0]!.splitId,
    shares: [1, 3],
    threshold: 2,
    total: 3,
  });
  await assertSharesAudit("recovered", [1, 3]);
  assert.deepEqual(await overviewFindings(), []);
  assertNoSecret([await auditText(), r.stdout, r.stderr]);
});

test("judgeServiceShares: old, failed after a success, a start from shares", () => {
  const now = new Date("2026-12-05T00:00:00Z");
  const at = (days: number) => new Date(now.getTime() - days * 86400_000).toISOString();
  const ok = (days: number, kind: "rehearsal" | "start" = "rehearsal") =>
    ({ at: at(days), kind, outcome: "recovered", split: "aa".repeat(8), shares: [1, 2] }) as const;
  assert.deepEqual(judgeServiceShares([], now, 180, "svc"), []);
  assert.deepEqual(judgeServiceShares([ok(10)], now, 180, "svc"), []);
  const old = judgeServiceShares([ok(200)], now, 180, "svc");
  assert.match(old[0]!.message, /were last test-recovered 200 days ago$/);
  // A start from shares (root.recover) is a real recovery of that split.
  assert.deepEqual(judgeServiceShares([ok(3, "start")], now, 180, "svc"), []);
  const failed = judgeServiceShares(
    [{ ...ok(1), outcome: "failed", reason: "E_USAGE: too few" }, ok(20)],
    now,
    180,
    "svc",
  );
  assert.match(
    failed[0]!.message,
    /^the last test recovery of the service root's shares \(split a+\) failed$/,
  );
  assert.match(failed[0]!.evidence, /too few; last success: test recovery/);
});
