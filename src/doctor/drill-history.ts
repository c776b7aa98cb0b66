/**
 * The breach drill history as governance reads it (doctor's drill.* checks, an auditor's
 * report): one JSON line per scenario run, written by `tensorseal drill run`
 * (src/drill/history.ts, which appends with this format). It lives here so that the governance
 * layer reads it without importing the incident layer above it.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { defaultHome } from "../keys/keystore.js";

export const HISTORY_FORMAT = "tensorseal-drill/1";

export interface DrillRecord {
  readonly format: typeof HISTORY_FORMAT;
  readonly scenario: string;
  readonly result: "pass" | "fail";
  readonly detectMs: number | null;
  readonly containMs: number | null;
  readonly durationMs: number;
  /** ISO time the scenario finished. */
  readonly time: string;
  readonly version: string;
  readonly database: string;
  /** Checks that held, of all checks. */
  readonly checks: { readonly passed: number; readonly total: number };
  /** Names of the checks that did not hold (empty on a pass), and the error if one ended it. */
  readonly failed: readonly string[];
  readonly error?: string;
}

/** --history, else TENSORSEAL_DRILL_HISTORY, else `$TENSORSEAL_HOME/drills/history.jsonl`. */
export function historyPath(flag?: string): string {
  return (
    flag || process.env.TENSORSEAL_DRILL_HISTORY || join(defaultHome(), "drills", "history.jsonl")
  );
}

export interface History {
  readonly records: DrillRecord[];
  /** Lines that are not drill records (skipped). */
  readonly skipped: number;
}

/** The history, oldest first; null when the file does not exist. */
export async function readHistory(path: string): Promise<History | null> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
  const records: DrillRecord[] = [];
  let skipped = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const r = JSON.parse(line) as DrillRecord;
      if (
        r.format === HISTORY_FORMAT &&
        typeof r.scenario === "string" &&
        (r.result === "pass" || r.result === "fail") &&
        !Number.isNaN(Date.parse(r.time))
      )
        records.push(r);
      else skipped++;
    } catch {
      skipped++;
    }
  }
  return { records, skipped };
}
