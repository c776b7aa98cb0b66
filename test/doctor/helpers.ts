/** Runs `tensorseal doctor` in a CLI sandbox and reads its JSON report. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Finding } from "../../src/doctor/index.js";
import type { Sandbox } from "../cli/helpers.js";

export interface DoctorJson {
  findings: Finding[];
  filesChecked: number;
  keystoreVerified: boolean | null;
  worst: string | null;
  exitCode: number;
}

export function doctorJson(
  s: Sandbox,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): DoctorJson & { status: number } {
  const r = s.run(["doctor", "--json", "--fail-on", "none", ...args], { env });
  assert.equal(r.status, 0, r.stderr);
  return { ...(JSON.parse(r.stdout.toString("utf8")) as DoctorJson), status: r.status };
}

/** The findings of one rule. */
export function of(report: { findings: Finding[] }, id: string): Finding[] {
  return report.findings.filter((f) => f.id === id);
}

/**
 * False for runtime.end-of-life, which depends on the Node.js running the test (reported on
 * CI's Node 20, not on 24) and has its own test (runtime.test.ts).
 */
export const notRuntime = (id: string) => id !== "runtime.end-of-life";

/** Seals a fresh random file under `dir` to `args` (e.g. ["-k", "default"]); returns its path. */
export function sealOne(s: Sandbox, dir: string, name: string, args: string[], env = {}): string {
  mkdirSync(dir, { recursive: true });
  const plain = join(dir, `${name}.bin`);
  writeFileSync(plain, randomBytes(3000));
  const out = join(dir, `${name}.tseal`);
  const r = s.run(["seal", plain, "-o", out, ...args], { env });
  assert.equal(r.status, 0, r.stderr);
  return out;
}
