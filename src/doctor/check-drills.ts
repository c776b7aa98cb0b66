/**
 * drill.none, drill.stale, drill.failed: the breach drill history (`tensorseal drill run`,
 * src/drill/history.ts). A history older than the limit is stale (warning); a scenario whose
 * latest run failed is an error (its defence did not hold the last time it was tried). A
 * missing history is reported only when the caller requires drills (`--drill-days` given):
 * doctor does not demand drills from every laptop.
 */
import type { History } from "./drill-history.js";
import type { Finding } from "./findings.js";

/** The default limit for "no drill in N days". */
export const DEFAULT_DRILL_DAYS = 90;

export function checkDrills(
  history: History | null,
  file: string,
  now: Date,
  days: number,
  required: boolean,
): Finding[] {
  const fix = "tensorseal drill run --all";
  if (!history || history.records.length === 0) {
    if (!required) return [];
    return [
      {
        id: "drill.none",
        severity: "warning",
        message: `no breach drill recorded in ${file}`,
        evidence: history
          ? `the file holds no drill record (${history.skipped} other line(s))`
          : "the file does not exist",
        fix,
        file,
      },
    ];
  }
  const out: Finding[] = [];
  const latest = new Map<string, History["records"][number]>();
  for (const r of history.records) {
    const prev = latest.get(r.scenario);
    if (!prev || Date.parse(r.time) >= Date.parse(prev.time)) latest.set(r.scenario, r);
  }
  const newest = Math.max(...history.records.map((r) => Date.parse(r.time)));
  const age = (now.getTime() - newest) / 86400_000;
  if (age >= days)
    out.push({
      id: "drill.stale",
      severity: "warning",
      message: `no breach drill in ${days} days: the newest ran ${Math.floor(age)} days ago`,
      evidence: `newest drill record ${new Date(newest).toISOString()}; checked at ${now.toISOString()}; limit ${days} days`,
      fix,
      file,
    });
  for (const [scenario, r] of [...latest].sort(([a], [b]) => (a < b ? -1 : 1)))
    if (r.result === "fail")
      out.push({
        id: "drill.failed",
        severity: "error",
        message: `the latest drill of ${scenario} failed: its defence did not hold`,
        evidence: `run at ${r.time} (${r.database}, version ${r.version}): ${
          r.error ? `error: ${r.error}` : `not held: ${r.failed.join("; ") || "no timing"}`
        }`,
        fix: `tensorseal drill history --scenario ${scenario}; fix the defence, then tensorseal drill run ${scenario}`,
        file,
      });
  return out;
}
