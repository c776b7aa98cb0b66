/**
 * Appending to the drill history (format and reader: src/doctor/drill-history.ts, so that
 * governance reads it without importing this layer). One JSON line per scenario run, in
 * `$TENSORSEAL_HOME/drills/history.jsonl` unless TENSORSEAL_DRILL_HISTORY or `--history` says
 * otherwise. Appends rewrite the file atomically (temp + fsync + rename, under a lock), so a
 * crash leaves the old history or the new one, never half a line.
 */
import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { type DrillRecord, HISTORY_FORMAT } from "../doctor/drill-history.js";
import { writeFileAtomic } from "../engine/output.js";
import { withLock } from "../keys/keystore-file.js";
import type { ScenarioReport } from "./types.js";

export {
  type DrillRecord,
  HISTORY_FORMAT,
  type History,
  historyPath,
  readHistory,
} from "../doctor/drill-history.js";

export const TOOL_VERSION = "0.1.0";

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
