/**
 * doctor's drill checks (src/doctor/check-drills.ts) over the drill history `tensorseal drill
 * run` writes: nothing is demanded of a home without drills unless --drill-days asks; a missing
 * or empty history is then drill.none; a newest record older than the limit is drill.stale; a
 * scenario whose latest run failed is drill.failed (an error), cleared by a later pass. The
 * history is appended atomically and junk lines are skipped. The doctor's clock is moved with
 * TENSORSEAL_NOW (a test knob).
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { appendHistory, readHistory, toRecord } from "../../src/drill/history.js";
import type { ScenarioReport } from "../../src/drill/index.js";
import { sandbox } from "../cli/helpers.js";
import { doctorJson, of } from "./helpers.js";

const s = sandbox();
after(() => s.cleanup());
const history = join(s.dir, "home", "drills", "history.jsonl");
const inDays = (d: number) => ({
  TENSORSEAL_NOW: new Date(Date.now() + d * 86400_000).toISOString(),
});

function report(scenario: string, result: "pass" | "fail"): ScenarioReport {
  return {
    scenario,
    result,
    detectMs: 5,
    containMs: result === "pass" ? 9 : null,
    durationMs: 100,
    checks: [
      { name: "the defence held", ok: result === "pass" },
      { name: "the attack is real", ok: true },
    ],
    database: "sqlite",
  };
}

test("without a history nothing is reported unless --drill-days asks; then drill.none", () => {
  assert.deepEqual(
    doctorJson(s, []).findings.filter((f) => f.id.startsWith("drill.")),
    [],
  );
  const none = of(doctorJson(s, ["--drill-days", "30"]), "drill.none");
  assert.equal(none.length, 1);
  assert.equal(none[0]!.severity, "warning");
  assert.equal(none[0]!.file, history);
  assert.match(none[0]!.fix, /tensorseal drill run --all/);
  const r = s.run(["doctor", "--drill-days", "30", "--fail-on", "warning"]);
  assert.equal(r.status, 21, r.stderr);
});

test("a recent passing history is clean; past the limit it is drill.stale", async () => {
  await appendHistory(history, [toRecord(report("lost-root", "pass"), new Date())]);
  assert.deepEqual(
    doctorJson(s, ["--drill-days", "30"]).findings.filter((f) => f.id.startsWith("drill.")),
    [],
  );
  // Without --drill-days an existing history is judged against the default, 90 days.
  assert.deepEqual(of(doctorJson(s, [], inDays(60)), "drill.stale"), []);
  const stale = of(doctorJson(s, [], inDays(91)), "drill.stale");
  assert.equal(stale.length, 1);
  assert.match(stale[0]!.message, /no breach drill in 90 days: the newest ran 91 days ago/);
  assert.equal(of(doctorJson(s, ["--drill-days", "30"], inDays(31)), "drill.stale").length, 1);
});

test("the latest failed run of a scenario is drill.failed; a later pass clears it", async () => {
  await appendHistory(history, [toRecord(report("insider-burst", "fail"), new Date())]);
  const failed = of(doctorJson(s, []), "drill.failed");
  assert.equal(failed.length, 1);
  assert.equal(failed[0]!.severity, "error");
  assert.match(failed[0]!.message, /insider-burst failed/);
  assert.match(failed[0]!.evidence, /not held: the defence held/);
  assert.equal(s.run(["doctor"]).status, 22);
  await appendHistory(history, [
    toRecord(report("insider-burst", "pass"), new Date(Date.now() + 1000)),
  ]);
  assert.deepEqual(of(doctorJson(s, []), "drill.failed"), []);
});

test("the history: appended atomically (no temp left), junk lines kept and skipped", async () => {
  writeFileSync(history, `${(await import("node:fs")).readFileSync(history, "utf8")}not json\n`);
  await appendHistory(history, [toRecord(report("lost-root", "pass"), new Date())]);
  const h = await readHistory(history);
  assert.ok(h);
  assert.equal(h.records.length, 4);
  assert.equal(h.skipped, 1);
  assert.deepEqual(readdirSync(join(s.dir, "home", "drills")), ["history.jsonl"]);
  assert.equal(await readHistory(join(s.dir, "nowhere.jsonl")), null);
  // --drill-history and TENSORSEAL_DRILL_HISTORY name another file.
  const other = join(s.dir, "elsewhere", "h.jsonl");
  mkdirSync(join(s.dir, "elsewhere"));
  const viaFlag = of(doctorJson(s, ["--drill-history", other, "--drill-days", "5"]), "drill.none");
  assert.equal(viaFlag[0]!.file, other);
  const viaEnv = of(
    doctorJson(s, ["--drill-days", "5"], { TENSORSEAL_DRILL_HISTORY: other }),
    "drill.none",
  );
  assert.equal(viaEnv[0]!.file, other);
});

test("--drill-days must be a whole number", () => {
  for (const bad of ["soon", "2.5", "-1"]) {
    const r = s.run(["doctor", "--drill-days", bad]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--drill-days/);
  }
});
