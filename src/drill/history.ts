/**
 * The drill history: one JSON line per scenario run, in `$TENSORSEAL_HOME/drills/history.jsonl`
 * unless TENSORSEAL_DRILL_HISTORY or `--history` says otherwise. `doctor` reads it ("no drill in
 * N days", "the last drill of X failed") and so can an auditor's report. Appends rewrite the
 * file atomically (temp + fsync + rename, under a lock), so a crash leaves the old history or
 * the new one, never half a line. Lines that do not parse are kept and skipped on reading.
 */
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../engine/output.js";
import { defaultHome } from "../keys/keystore.js";
import { withLock } from "../keys/keystore-file.js";
import type { DrillResult, ScenarioReport } from "./types.js";

export const HISTORY_FORMAT = "tensorseal-drill/1";
export const TOOL_VERSION = "0.1.0";

export interface DrillRecord {
  readonly format: typeof HISTORY_FORMAT;
  readonly scenario: string;
  readonly result: DrillResult;
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
  return flag || process.env.TENSORSEAL_DRILL_HISTORY || join(defaultHome(), "drills", "history.jsonl");
}

export function toRecord(r: ScenarioReport, time: Date): DrillRecord {
  return {
    format: HISTORY_FORMAT,
    scenario: r.scenario,
    result: r.result,
    detectMs: r.detectMs,
    containMs: r.containMs,
    durationMs: r.durationMs,
    time: time.toISOString(),
    version: TOOL_VERSION,
    database: r.database,
    checks: { passed: r.checks.filter((c) => c.ok).length, total: r.checks.length },
    failed: r.checks.filter((c) => !c.ok).map((c) => c.name),
    ...(r.error !== undefined ? { error: r.error } : {}),
  };
}

/** Appends records (one line each) atomically. */
export async function appendHistory(path: string, records: readonly DrillRecord[]): Promise<void> {
  if (records.length === 0) return;
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await withLock(dir, async () => {
    const old = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return "";
      throw e;
    });
    const head = old === "" || old.endsWith("\n") ? old : `${old}\n`;
    const lines = records.map((r) => `${JSON.stringify(r)}\n`).join("");
    await writeFileAtomic(path, head + lines);
  });
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
