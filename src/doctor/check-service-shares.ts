/**
 * root.shares-untested for the key service's root, judged by the service itself (GET
 * /v1/overview `findings`; `doctor --server` relays it) from its audit log: `root.shares-verified`
 * entries (test recoveries through POST /v1/root/shares/verify, successful or failed) and
 * `root.recover` entries (a start from shares: a real recovery of that split). Only the newest
 * event is judged: it names the split in use (an older split may have been retired by a new one,
 * which the service cannot see). A service with neither entry never had its root given to it as
 * shares nor tested any: nothing shows a split exists, so nothing is reported.
 */
import type { Finding } from "./findings.js";

export interface ShareEvent {
  readonly at: string;
  readonly kind: "rehearsal" | "start";
  readonly outcome: "recovered" | "failed";
  readonly split: string | null;
  readonly shares: readonly number[];
  readonly reason?: string;
}

const DAY_MS = 86400_000;

/** `events` newest first. */
export function judgeServiceShares(
  events: readonly ShareEvent[],
  now: Date,
  maxDays: number,
  where: string,
): Finding[] {
  const latest = events[0];
  if (!latest) return [];
  const split = latest.split ?? "unknown";
  const fix = `have the custodians test-recover the service root: \`tensorseal service root shares verify SHARE...\` (admin token; the service checks in memory that they rebuild its root and audits root.shares-verified); if they cannot, split again (\`tensorseal service root split\`) and destroy the old shares`;
  const what = (e: ShareEvent) =>
    `${e.kind === "start" ? "start from shares (root.recover)" : "test recovery (root.shares-verified)"} ${e.at} with shares ${e.shares.join(", ") || "none read"}`;
  if (latest.outcome === "failed") {
    const ok = events.find((e) => e.outcome === "recovered" && e.split === latest.split);
    return [
      {
        id: "root.shares-untested",
        severity: "warning",
        message: ok
          ? `the last test recovery of the service root's shares (split ${split}) failed`
          : `the service root's shares (split ${split}) were never test-recovered: the last attempt failed`,
        evidence: `${where}: ${what(latest)}: ${latest.reason ?? "no reason recorded"}; ${ok ? `last success: ${what(ok)}` : "no successful recovery of this split in the audit log"}`,
        fix,
      },
    ];
  }
  const days = Math.floor((now.getTime() - Date.parse(latest.at)) / DAY_MS);
  if (days < maxDays) return [];
  return [
    {
      id: "root.shares-untested",
      severity: "warning",
      message: `the service root's shares (split ${split}) were last test-recovered ${days} days ago`,
      evidence: `${where}: ${what(latest)}; limit ${maxDays} days`,
      fix,
    },
  ];
}
