/**
 * key.rotation-overdue: a key whose primary version is older than its rotation period. A key
 * with its own `rotation_period` (`keys set --rotation-period`) that is overdue is a warning:
 * `keys rotate-due` (from cron) should have rotated it. A key without one is measured against
 * the default period (`doctor.rotation_period` in .tensorseal.yaml, else 365 days) and reported
 * as a note: nobody asked for its rotation, but it has served long.
 */
import type { KeyInfo } from "../keys/index.js";
import { rotationDue } from "../keys/rotation-due.js";
import type { Finding } from "./findings.js";

export { type RotationDue, rotationDue } from "../keys/rotation-due.js";

/** One year, as AWS KMS's default automatic rotation period. */
export const DEFAULT_ROTATION_SECONDS = 365 * 86400;

export function checkRotation(
  keys: readonly KeyInfo[],
  now: Date,
  defaultPeriod: number | null,
  keystoreFile: string,
): Finding[] {
  const out: Finding[] = [];
  for (const k of keys) {
    const due = rotationDue(k, defaultPeriod);
    if (!due) continue;
    const { period, primaryCreated } = due;
    const own = k.rotationPeriod;
    const age = (now.getTime() - Date.parse(primaryCreated)) / 1000;
    if (age < period) continue;
    const source = own !== null ? "its rotation period" : "the default rotation period";
    out.push({
      id: "key.rotation-overdue",
      severity: own !== null ? "warning" : "note",
      message: `key ${k.name}: primary version ${k.primaryVersion} is ${days(age)} old, past ${source} of ${days(period)}`,
      evidence: `version ${k.primaryVersion} created ${primaryCreated}; ${own !== null ? "rotation_period" : "doctor.rotation_period default"} ${period}s; checked at ${now.toISOString()}`,
      fix: `tensorseal keys rotate ${k.name} && tensorseal rewrap --to-latest PATHS`,
      file: keystoreFile,
    });
  }
  return out;
}

function days(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  return d >= 1 ? `${d} day${d === 1 ? "" : "s"}` : `${Math.floor(seconds)}s`;
}
