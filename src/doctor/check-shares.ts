/**
 * root.shares-untested: a root key share file (`root split`, `service root split`) written
 * longer ago than `maxDays` (doctor --share-days, default 180). TensorSeal records no test
 * recovery of a split (docs/DECISIONS.md, "doctor: root shares never test-recovered"), and a
 * share file carries no date of its own, so the file's modification time is the only honest
 * age there is: the share's split and index come from its header line; the share bytes are
 * never read into a finding.
 */
import { readFile, stat } from "node:fs/promises";
import type { Finding } from "./findings.js";

export const DEFAULT_SHARE_DAYS = 180;

const HEADER =
  /^tensorseal-root-share\/v1 keystore=([0-9a-f]{32}) split=([0-9a-f]{16}) index=(\d{1,3}) shares=(\d{1,3}) threshold=(\d{1,3})$/m;

export async function checkShares(
  files: readonly string[],
  now: Date,
  maxDays: number,
): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const file of files) {
    let text: string;
    let mtime: Date;
    try {
      [text, mtime] = await Promise.all([readFile(file, "utf8"), stat(file).then((s) => s.mtime)]);
    } catch {
      continue; // unreadable: perm checks and the caller's walk already report what they can
    }
    const m = HEADER.exec(text);
    if (!m) continue;
    const days = Math.floor((now.getTime() - mtime.getTime()) / 86400_000);
    if (days < maxDays) continue;
    out.push({
      id: "root.shares-untested",
      severity: "warning",
      message: `root key share ${m[3]} of ${m[4]} (split ${m[2]}) was written ${days} days ago and no test recovery is recorded`,
      evidence: `keystore ${m[1]}; split ${m[2]}; index ${m[3]}, threshold ${m[5]} of ${m[4]}; file modified ${mtime.toISOString()}; limit ${maxDays} days; TensorSeal records no test recovery`,
      fix: "have the custodians rehearse a recovery (`tensorseal drill run lost-root` walks the procedure; `tensorseal root recover` / `serve --root-shares` on a scratch copy), then split again (`tensorseal root split` or `tensorseal service root split`) and destroy the old shares",
      file,
    });
  }
  return out;
}
