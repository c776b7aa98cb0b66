/**
 * root.shares-untested: a split of the root key whose shares were never test-recovered, whose
 * last test recovery is older than `maxDays` (doctor --share-days, default 180), or whose last
 * test recovery failed. The evidence is the rehearsal record next to the keystore
 * (root-rehearsals.json, written by `root split`, `root shares verify` and `root rotate`). The
 * splits judged are those the record lists for the current root, and those of share files found
 * under PATHS that belong to this keystore.
 *
 * A share file of another root (a service root's `service root split`, another keystore's) can
 * have no record here: for it the file's modification time stays the only honest age, and the
 * evidence says so. The share bytes are never read into a finding.
 */
import { readFile, stat } from "node:fs/promises";
import {
  lastRehearsals,
  type RehearsalRecord,
  readRehearsals,
  rehearsalsPath,
} from "../keys/root-rehearsals.js";
import type { Finding } from "./findings.js";

export const DEFAULT_SHARE_DAYS = 180;
const DAY_MS = 86400_000;

const HEADER =
  /^tensorseal-root-share\/v1 keystore=([0-9a-f]{32}) split=([0-9a-f]{16}) index=(\d{1,3}) shares=(\d{1,3}) threshold=(\d{1,3})$/m;

export interface ShareCheck {
  /** Share files found under PATHS. */
  readonly files: readonly string[];
  readonly home: string;
  /** The keystore in `home` (null: none, so no record can exist). */
  readonly keystoreId: string | null;
  readonly now: Date;
  readonly maxDays: number;
}

interface Split {
  readonly split: string;
  readonly shares: number;
  readonly threshold: number;
  /** When `root split` recorded it (absent for a split known only from its share files). */
  readonly at?: string;
  readonly files: string[];
}

export async function checkShares(c: ShareCheck): Promise<Finding[]> {
  const out: Finding[] = [];
  let record: RehearsalRecord | null = null;
  let unreadable: string | null = null;
  if (c.keystoreId) {
    try {
      record = await readRehearsals(c.home);
    } catch (e) {
      unreadable = e instanceof Error ? e.message : String(e);
      record = { format: "tensorseal-root-rehearsals/v1", splits: [], rehearsals: [] };
    }
  }
  const splits = new Map<string, Split>();
  for (const s of record?.splits ?? [])
    splits.set(s.split, {
      split: s.split,
      shares: s.shares,
      threshold: s.threshold,
      at: s.at,
      files: [],
    });
  for (const file of c.files) {
    let text: string;
    let mtime: Date;
    try {
      [text, mtime] = await Promise.all([readFile(file, "utf8"), stat(file).then((s) => s.mtime)]);
    } catch {
      continue; // unreadable: perm checks and the caller's walk already report what they can
    }
    const m = HEADER.exec(text);
    if (!m) continue;
    const [keystore, split, index, shares, threshold] = m.slice(1) as [
      string,
      string,
      string,
      string,
      string,
    ];
    if (keystore === c.keystoreId) {
      const known = splits.get(split);
      if (known) known.files.push(file);
      else
        splits.set(split, {
          split,
          shares: Number(shares),
          threshold: Number(threshold),
          files: [file],
        });
      continue;
    }
    // Not this keystore's share: nothing here can record its test recovery.
    const days = Math.floor((c.now.getTime() - mtime.getTime()) / DAY_MS);
    if (days < c.maxDays) continue;
    out.push({
      id: "root.shares-untested",
      severity: "warning",
      message: `root key share ${index} of ${shares} (split ${split}) was written ${days} days ago and no test recovery of it can be recorded here`,
      evidence: `keystore ${keystore}; split ${split}; index ${index}, threshold ${threshold} of ${shares}; file modified ${mtime.toISOString()}; limit ${c.maxDays} days; fallback evidence: the share is not of the keystore in ${c.home}, so no root-rehearsals.json can name it (a service root's shares are test-recovered on the service: \`tensorseal service root shares verify\`, judged in doctor --server)`,
      fix: "have the custodians test-recover the root these shares belong to (`tensorseal service root shares verify` for a service root), or split again and destroy the old shares",
      file,
    });
  }
  if (!record) return out;
  const where = rehearsalsPath(c.home);
  for (const s of splits.values()) out.push(...judgeSplit(s, record, where, c, unreadable));
  return out;
}

function judgeSplit(
  s: Split,
  record: RehearsalRecord,
  where: string,
  c: ShareCheck,
  unreadable: string | null,
): Finding[] {
  const { last, lastRecovered } = lastRehearsals(record, s.split);
  const file = s.at ? where : (s.files[0] ?? where);
  const made = s.at ? `split made ${s.at}` : `split known from ${s.files.length} share file(s)`;
  const base = `keystore in ${c.home}; split ${s.split}, threshold ${s.threshold} of ${s.shares}; ${made}; limit ${c.maxDays} days`;
  const fix = `have ${s.threshold} custodians test-recover the root: \`tensorseal root shares verify SHARE...\` (checks in memory that they rebuild the current root, records the outcome); if they cannot, split again (\`tensorseal root split\`) and destroy the old shares`;
  if (last?.outcome === "failed")
    return [
      {
        id: "root.shares-untested",
        severity: "warning",
        message: `the last test recovery of root key split ${s.split} failed (${last.at})`,
        evidence: `${base}; shares ${last.shares.join(", ") || "none read"}; ${last.reason ?? "no reason recorded"}${lastRecovered ? `; last success ${lastRecovered.at}` : "; never recovered successfully"}`,
        fix,
        file,
      },
    ];
  if (!lastRecovered)
    return [
      {
        id: "root.shares-untested",
        severity: "warning",
        message: `root key split ${s.split} (${s.threshold} of ${s.shares}) was never test-recovered`,
        evidence: `${base}; ${unreadable ? `the rehearsal record cannot be read: ${unreadable}` : `no test recovery in ${where}`}`,
        fix,
        file,
      },
    ];
  const days = Math.floor((c.now.getTime() - Date.parse(lastRecovered.at)) / DAY_MS);
  if (days < c.maxDays) return [];
  return [
    {
      id: "root.shares-untested",
      severity: "warning",
      message: `root key split ${s.split} was last test-recovered ${days} days ago`,
      evidence: `${base}; last test recovery ${lastRecovered.at} with shares ${lastRecovered.shares.join(", ")}`,
      fix,
      file,
    },
  ];
}
