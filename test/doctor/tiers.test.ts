/**
 * doctor's tier checks (src/doctor/check-tiers.ts): files sealed within their tier, then judged
 * against a .tensorseal.yaml that tightened the tiers, one that dropped a tier, and a clock past
 * the tier's rotation period. The same files under the original tiers report nothing.
 */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { doctorJson, sealOne } from "./helpers.js";

const START = Date.now();
const plusDays = (d: number) => new Date(START + d * 86400_000).toISOString();
const at = (d: number) => ({ TENSORSEAL_NOW: plusDays(d) });
const TIER_RULES = ["file.tier-violation", "file.tier-rotation", "file.tier-unknown"];

describe("tensorseal doctor: tiers violated by existing files", () => {
  let s: Sandbox;
  let dir: string;
  let pw: string;
  let conf: string;
  let lab: string;
  const config = (lines: string[]) =>
    writeFileSync(join(s.dir, ".tensorseal.yaml"), [...lines, ""].join("\n"));
  const tierFindings = (d: number) =>
    doctorJson(s, [dir], at(d)).findings.filter((f) => TIER_RULES.includes(f.id));

  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"], { env: at(0) }).status, 0);
    dir = join(s.dir, "files");
    const pass = join(s.dir, "pass.txt");
    writeFileSync(pass, "correct horse battery staple\n");
    config(["tiers:", "  lab: { allow: [kek] }"]);
    pw = sealOne(s, dir, "pw", ["--tier", "internal", "--passphrase-file", pass], at(0));
    conf = sealOne(s, dir, "conf", ["--tier", "confidential", "-k", "default"], at(0));
    lab = sealOne(s, dir, "lab", ["--tier", "lab", "-k", "default"], at(0));
    sealOne(s, dir, "plain", ["-k", "default"], at(0)); // no tier: never judged
  });
  after(() => s.cleanup());

  test("clean: files within their tiers report nothing", () => {
    assert.deepEqual(tierFindings(1), []);
  });

  test("file.tier-violation: a tightened tier finds the passphrase file (error)", () => {
    config(["tiers:", "  lab: { allow: [kek] }", "  internal: { allow: [kek, pkcs11] }"]);
    const found = tierFindings(1);
    assert.deepEqual(
      found.map((f) => [f.id, f.severity, f.file]),
      [["file.tier-violation", "error", pw]],
    );
    assert.match(found[0]!.message, /tier internal does not allow passphrase recipients/);
    assert.match(found[0]!.evidence, /stanzas: passphrase/);
    assert.match(found[0]!.fix, /rewrap .* --remove-recipient/);
    const r = s.run(["doctor", dir], { env: at(1) });
    assert.equal(r.status, 22, "an error finding: exit 22");
  });

  test("file.tier-rotation: past confidential's 365 days the kek file is reported", () => {
    config(["tiers:", "  lab: { allow: [kek] }"]);
    const found = tierFindings(400);
    assert.deepEqual(
      found.map((f) => [f.id, f.severity, f.file]),
      [["file.tier-rotation", "warning", conf]],
    );
    assert.match(
      found[0]!.message,
      /requires keys rotated every 365d: key default v1 is 39\d+d old/,
    );
    assert.match(found[0]!.fix, /keys rotate default && tensorseal rewrap --to-latest/);
    assert.deepEqual(tierFindings(300), [], "within the period: nothing");
  });

  test("file.tier-unknown: a tier the configuration no longer defines", () => {
    rmSync(join(s.dir, ".tensorseal.yaml"));
    const found = tierFindings(1);
    assert.deepEqual(
      found.map((f) => [f.id, f.severity, f.file]),
      [["file.tier-unknown", "warning", lab]],
    );
    assert.match(
      found[0]!.evidence,
      /the built-in tiers: public, internal, confidential, restricted/,
    );
  });
});
