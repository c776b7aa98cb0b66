/**
 * service.policy-overbroad: Cedar permits judged on Cedar's own JSON form, from a real key
 * service on loopback (GET /v1/policies, admin token) and from local files (`doctor --policy`).
 * (root.shares-untested: shares.test.ts.)
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { judgePolicy } from "../../src/doctor/check-policy.js";
import { Authorizer } from "../../src/service/authz/cedar.js";
import { DEFAULT_POLICIES } from "../../src/service/authz/schema.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { type CliService, cliService, token } from "../service/helpers.js";
import { doctorJson, of } from "./helpers.js";

const PERMIT_ALL = "permit (principal, action, resource);";
const ANY_UNWRAP = 'permit (principal, action == TensorSeal::Action::"unwrap", resource);';
const ANY_ON_KEYS =
  'permit (principal in TensorSeal::Role::"ops", action, resource is TensorSeal::Key);';

test("judgePolicy: permit-all is an error; the partial cases a warning; the rest clean", () => {
  assert.equal(judgePolicy(PERMIT_ALL)?.severity, "error");
  assert.equal(
    judgePolicy("permit (principal is TensorSeal::User, action, resource);")?.severity,
    "error",
  );
  assert.equal(judgePolicy(ANY_UNWRAP)?.severity, "warning");
  assert.match(judgePolicy(ANY_UNWRAP)!.why, /any principal may release key material \(unwrap\)/);
  assert.equal(
    judgePolicy(
      'permit (principal, action in [TensorSeal::Action::"wrap", TensorSeal::Action::"keys:export"], resource);',
    )?.severity,
    "warning",
  );
  assert.equal(judgePolicy(ANY_ON_KEYS)?.severity, "warning");
  assert.match(judgePolicy(ANY_ON_KEYS)!.why, /any action on any key/);
  // A constrained scope or a forbid: not judged over-broad.
  assert.equal(judgePolicy("forbid (principal, action, resource);"), null);
  assert.equal(
    judgePolicy('permit (principal, action == TensorSeal::Action::"wrap", resource);'),
    null,
  );
  for (const [id, text] of Object.entries(DEFAULT_POLICIES))
    assert.equal(judgePolicy(text), null, `${id} is clean`);
});

test("judgePolicy: a condition that admits a principal with no role is judged like none", () => {
  // Conditions every request meets: Cedar permits the probe, so the scope's verdict stands.
  const always = judgePolicy("permit (principal, action, resource) when { context.time > 0 };");
  assert.equal(always?.severity, "error");
  assert.match(always!.scope, /its condition admits a principal holding no role/);
  assert.equal(
    judgePolicy("permit (principal, action, resource) when { true };")?.severity,
    "error",
  );
  const unlessBlocked = judgePolicy(
    'permit (principal, action == TensorSeal::Action::"unwrap", resource) unless { principal.roles.contains("blocked") };',
  );
  assert.equal(unlessBlocked?.severity, "warning");
  assert.match(unlessBlocked!.why, /any principal may release key material \(unwrap\)/);
  // Low-sensitivity keys to anyone is still key material to anyone.
  assert.equal(
    judgePolicy(
      'permit (principal, action == TensorSeal::Action::"unwrap", resource) when { resource.sensitivityLevel <= 2 };',
    )?.severity,
    "warning",
  );
  assert.equal(
    judgePolicy(
      'permit (principal in TensorSeal::Role::"ops", action, resource) when { principal.kind != "nobody" };',
    )?.severity,
    "warning",
  );
  // Conditions a role-less principal or a bare request cannot meet: not over-broad.
  for (const text of [
    'permit (principal, action, resource) when { principal.roles.contains("admin") };',
    'permit (principal, action == TensorSeal::Action::"unwrap", resource) when { principal in TensorSeal::Role::"unwrap" };',
    'permit (principal, action == TensorSeal::Action::"unwrap", resource) when { context has attestation && !context.attestation.debug };',
    'permit (principal, action == TensorSeal::Action::"unwrap", resource) when { context.attestation.debug == false };',
    "permit (principal, action, resource) when { resource.sensitivityLevel > 4 };",
    'permit (principal in TensorSeal::Role::"ops", action, resource) when { context.principalKind == "nobody" };',
  ])
    assert.equal(judgePolicy(text), null, text);
});

describe("doctor --policy FILE|DIR", () => {
  let s: Sandbox;
  before(() => {
    s = sandbox();
  });
  after(() => s.cleanup());

  test("a permit-all file is an error, a scoped broad one a warning, ids as serve reads them", () => {
    const dir = join(s.dir, "pol");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "a.cedar"), `${PERMIT_ALL}\n@id("ops-keys")\n${ANY_ON_KEYS}\n`);
    writeFileSync(
      join(dir, "b.cedar"),
      'permit (principal in TensorSeal::Role::"wrap", action == TensorSeal::Action::"wrap", resource);\n',
    );
    const r = doctorJson(s, ["--policy", dir]);
    const found = of(r, "service.policy-overbroad").map((f) => [f.severity, f.message, f.file]);
    assert.deepEqual(found, [
      [
        "error",
        "Cedar policy a.cedar#0 is over-broad: any principal may do any action on any resource",
        join(dir, "a.cedar"),
      ],
      [
        "warning",
        "Cedar policy ops-keys is over-broad: the principal may do any action on any key",
        join(dir, "a.cedar"),
      ],
    ]);
    const one = doctorJson(s, ["--policy", join(dir, "b.cedar")]);
    assert.deepEqual(of(one, "service.policy-overbroad"), []);
    writeFileSync(join(s.dir, "bad.cedar"), "permit (principal, ");
    const bad = s.run(["doctor", "--policy", join(s.dir, "bad.cedar")]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr.toString(), /policy file .*bad\.cedar: /);
  });
});

describe("doctor --server: the service's active policy set", () => {
  let s: Sandbox;
  let clean: CliService;
  let broad: CliService;
  before(async () => {
    s = sandbox();
    clean = await cliService(s);
    broad = await cliService(s, {
      authorizer: Authorizer.fromPolicies({ ...DEFAULT_POLICIES, "open-door": PERMIT_ALL }, "test"),
    });
  });
  after(async () => {
    await clean?.close();
    await broad?.close();
    s.cleanup();
  });

  async function doctor(env: NodeJS.ProcessEnv) {
    const r = await s.runAsync(["doctor", "--json", "--fail-on", "none"], env);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  }

  test("the default policies are clean; a permit-all set is an error", async () => {
    const c = await doctor({
      ...clean.env,
      TENSORSEAL_SERVER_TOKEN: await token(clean.db, "admin"),
    });
    assert.deepEqual(of(c, "service.policy-overbroad"), []);
    assert.deepEqual(of(c, "service.policies-unchecked"), []);
    const b = await doctor({
      ...broad.env,
      TENSORSEAL_SERVER_TOKEN: await token(broad.db, "admin"),
    });
    const found = of(b, "service.policy-overbroad");
    assert.equal(found.length, 1);
    assert.equal(found[0]!.severity, "error");
    assert.match(found[0]!.message, /^Cedar policy open-door is over-broad/);
    assert.match(
      found[0]!.evidence,
      /policy set version 0 \(digest [0-9a-f]{16}\): open-door: principal any, action any, resource any, no condition$/,
    );
  });

  test("without a token allowed policies:read, a note says it was not checked", async () => {
    const r = await doctor({
      ...clean.env,
      TENSORSEAL_SERVER_TOKEN: await token(clean.db, "unwrap"),
    });
    const note = of(r, "service.policies-unchecked");
    assert.equal(note.length, 1);
    assert.match(note[0]!.message, /HTTP 403/);
    const none = await doctor(clean.env);
    assert.match(of(none, "service.policies-unchecked")[0]!.message, /no token in the environment/);
  });
});
