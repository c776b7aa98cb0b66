/**
 * runtime.end-of-life: the Node.js line running tensorseal past its end of life is a warning
 * (its OpenSSL, which does all of tensorseal's cryptography, gets no more fixes). Judged against
 * doctor's clock, so the CLI half pins it (TENSORSEAL_NOW) and holds on any runtime CI uses.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { checkRuntime } from "../../src/doctor/check-runtime.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { doctorJson, of } from "./helpers.js";

test("a line is judged from the day its end of life begins, and only a listed line", () => {
  const at = (iso: string) => new Date(iso);
  assert.deepEqual(checkRuntime("20.20.2", "3.0.19", at("2026-04-29T23:59:59Z")), []);
  const [f, ...more] = checkRuntime("20.20.2", "3.0.19", at("2026-04-30T00:00:00Z"));
  assert.deepEqual(more, []);
  assert.equal(f!.id, "runtime.end-of-life");
  assert.equal(f!.severity, "warning");
  assert.equal(f!.file, undefined, "about the process, not a file");
  assert.match(f!.message, /Node\.js 20\.20\.2, whose line reached its end of life on 2026-04-30/);
  assert.equal(
    f!.evidence,
    "Node.js 20.20.2 with OpenSSL 3.0.19; Node.js 20 end of life 2026-04-30",
  );
  assert.match(f!.fix, /Node\.js line that is still supported \(24/);
  // An odd line ends after its six months; a v prefix is read as well.
  assert.equal(checkRuntime("v25.9.0", "3.5.5", at("2026-06-01T00:00:00Z")).length, 1);
  assert.deepEqual(checkRuntime("25.9.0", "3.5.5", at("2026-05-31T12:00:00Z")), []);
  // Supported lines are not reported; a line the table does not know is not judged.
  assert.deepEqual(checkRuntime("24.22.3", "3.5.5", at("2026-12-06T00:00:00Z")), []);
  assert.deepEqual(checkRuntime("22.12.0", "3.0.15", at("2027-04-29T00:00:00Z")), []);
  assert.equal(checkRuntime("24.22.3", "3.5.5", at("2028-04-30T00:00:00Z")).length, 1);
  assert.deepEqual(checkRuntime("28.0.0", "4.0.0", at("2040-01-01T00:00:00Z")), []);
  assert.deepEqual(checkRuntime("not a version", "?", at("2040-01-01T00:00:00Z")), []);
});

let s: Sandbox;
before(() => {
  s = sandbox();
  assert.equal(s.run(["init"]).status, 0);
});
after(() => s.cleanup());

test("doctor reports the Node.js it runs on once that line has ended, with no PATHS", () => {
  const { node, openssl } = process.versions;
  // Every line CI runs (20, 24) was supported on 2026-01-01 and has ended by 2030-05-01.
  const early = doctorJson(s, [], { TENSORSEAL_NOW: "2026-01-01T00:00:00Z" });
  assert.deepEqual(of(early, "runtime.end-of-life"), []);
  const late = doctorJson(s, [], { TENSORSEAL_NOW: "2030-05-01T00:00:00Z" });
  const found = of(late, "runtime.end-of-life");
  assert.equal(found.length, 1, JSON.stringify(late.findings));
  const evidence = found[0]!.evidence;
  assert.ok(evidence.startsWith(`Node.js ${node} with OpenSSL ${openssl};`), evidence);
  // A warning: below the default --fail-on error, at --fail-on warning. The sandbox has nothing
  // else at warning or above, so the exit codes are the runtime finding's alone.
  const exit = (now: string, args: string[] = []) =>
    s.run(["doctor", ...args], { env: { TENSORSEAL_NOW: now } });
  assert.equal(exit("2026-01-01T00:00:00Z", ["--fail-on", "warning"]).status, 0);
  const strict = exit("2030-05-01T00:00:00Z", ["--fail-on", "warning"]);
  assert.equal(strict.status, 21, strict.stderr);
  assert.match(strict.stdout.toString(), /^WARNING runtime\.end-of-life$/m);
  assert.equal(exit("2030-05-01T00:00:00Z").status, 0);
});
