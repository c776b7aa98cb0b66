/** `tensorseal policy test` and `serve --policy` refusing invalid policies (exit 2). */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { CLI } from "../cli/helpers.js";

let dir: string;

function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    env: { ...process.env, TENSORSEAL_HOME: dir },
  });
}

const unwrapper = { id: "jwt:trainer", kind: "jwt", roles: ["unwrap"] };
const snp = { issuer: "https://v", tee: "sev-snp", measurement: "m", debug: false, svn: 1 };

before(() => {
  dir = mkdtempSync(join(tmpdir(), "tensorseal-polcli-"));
  writeFileSync(
    join(dir, "p.cedar"),
    `@id("attested-unwrap")
permit (principal in TensorSeal::Role::"unwrap", action == TensorSeal::Action::"unwrap", resource)
when { context has attestation && context.attestation.tee == "sev-snp" };`,
  );
  const requests = [
    {
      name: "attested",
      principal: unwrapper,
      action: "unwrap",
      resource: { type: "Key", name: "m" },
      context: { attestation: snp },
      expect: "allow",
    },
    {
      name: "plain",
      principal: unwrapper,
      action: "unwrap",
      resource: { type: "Key", name: "m" },
      expect: "deny",
    },
  ];
  writeFileSync(join(dir, "ok.json"), JSON.stringify({ requests }));
  mkdirSync(join(dir, "art"));
  writeFileSync(
    join(dir, "art", "a.cedar"),
    `@id("read")
permit (principal in TensorSeal::Role::"reader", action == TensorSeal::Action::"artifacts:read", resource);
@id("no-prod")
forbid (principal, action == TensorSeal::Action::"artifacts:read", resource is TensorSeal::Artifact)
when { resource.labels.contains("stage=prod") || resource.key.sensitivityLevel >= 4 };
@id("unwrap")
permit (principal in TensorSeal::Role::"unwrap", action == TensorSeal::Action::"unwrap", resource)
unless { context has artifact && context.artifact.sensitivityLevel >= 3 };`,
  );
  const reader = { id: "r", roles: ["reader"] };
  const art = (labels: unknown, key: unknown) => ({ type: "Artifact", id: "m1", key, labels });
  writeFileSync(
    join(dir, "art.json"),
    JSON.stringify([
      {
        name: "dev",
        principal: reader,
        action: "artifacts:read",
        resource: art({ stage: "dev" }, "k"),
        expect: "allow",
      },
      {
        name: "prod",
        principal: reader,
        action: "artifacts:read",
        resource: art(["stage=prod"], "k"),
        expect: "deny",
      },
      {
        name: "restricted-key",
        principal: reader,
        action: "artifacts:read",
        resource: art({}, { name: "k", sensitivity: "restricted" }),
        expect: "deny",
      },
      {
        name: "confidential-artifact",
        principal: unwrapper,
        action: "unwrap",
        resource: {
          type: "Key",
          name: "k",
          artifact: { id: "m1", labels: { sensitivity: "confidential" } },
        },
        expect: "deny",
      },
      {
        name: "public-artifact",
        principal: unwrapper,
        action: "unwrap",
        resource: {
          type: "Key",
          name: "k",
          sensitivity: "restricted",
          artifact: { id: "m1", labels: { sensitivity: "public" } },
        },
        expect: "allow",
      },
    ]),
  );
  writeFileSync(
    join(dir, "badsens.json"),
    JSON.stringify([
      {
        principal: reader,
        action: "artifacts:read",
        resource: art({}, { name: "k", sensitivity: "high" }),
      },
    ]),
  );
  writeFileSync(join(dir, "bad.json"), JSON.stringify([{ ...requests[1], expect: "allow" }]));
});

after(() => rmSync(dir, { recursive: true, force: true }));

test("policy test: decisions and reasons, exit 0 when every expectation matches", () => {
  const r = cli("policy", "test", "--policy", dir, "--request", join(dir, "ok.json"));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ALLOW {2}attested: permitted \[attested-unwrap\]$/m);
  assert.match(r.stdout, /^DENY {2}plain: no policy permits unwrap on key m \(default deny\)$/m);
});

test("policy test: exit 1 on a mismatch; the built-in set without --policy", () => {
  const r = cli("policy", "test", "--policy", dir, "--request", join(dir, "bad.json"));
  assert.equal(r.status, 1);
  assert.match(r.stdout, /MISMATCH/);
  const d = cli("policy", "test", "--request", join(dir, "bad.json"));
  assert.equal(d.status, 0, d.stdout + d.stderr);
  assert.match(d.stdout, /ALLOW .*\[default:unwrap\]/);
});

test("serve and policy test refuse invalid policies (exit 2)", () => {
  const bad = join(dir, "bad");
  mkdirSync(bad);
  writeFileSync(
    join(bad, "x.cedar"),
    'permit (principal, action, resource) when { context.attestation.tee == "x" };',
  );
  const r = cli("policy", "test", "--policy", bad, "--request", join(dir, "ok.json"));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /do not validate against the schema/);
  const s = cli("serve", "--dev", "--listen", "127.0.0.1:0", "--policy", bad);
  assert.equal(s.status, 2, s.stderr);
  assert.match(s.stderr, /do not validate against the schema/);
});

test("policy test: Artifact resources, key metadata and context.artifact; unknown sensitivity is a usage error", () => {
  const r = cli("policy", "test", "--policy", join(dir, "art"), "--request", join(dir, "art.json"));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(
    r.stdout,
    /^DENY {2}prod: artifacts:read on artifact m1 forbidden by no-prod \[no-prod\]$/m,
  );
  assert.match(r.stdout, /^5 request\(s\), 0 mismatch\(es\)/m);
  const bad = cli(
    "policy",
    "test",
    "--policy",
    join(dir, "art"),
    "--request",
    join(dir, "badsens.json"),
  );
  assert.equal(bad.status, 2, bad.stdout + bad.stderr);
  assert.match(bad.stderr, /sensitivity "high": one of unspecified, public/);
});
