/**
 * The record of the keystore root's splits and of their test recoveries (`root shares verify`),
 * kept next to keystore.json as root-rehearsals.json (0600, replaced atomically under the
 * keystore lock). It holds split ids, share indices, times and outcomes: never share or root
 * bytes. It is not MACed (the check must work without unlocking the keystore); it lives in the
 * keystore's private directory, and forging it only hides a doctor warning, it grants nothing.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../engine/output.js";
import { fail } from "../format/errors.js";
import { withLock } from "./keystore-file.js";

export const REHEARSALS_FILE = "root-rehearsals.json";
const FORMAT = "tensorseal-root-rehearsals/v1";
/** Only the newest rehearsals matter to doctor; the file stays small. */
const MAX_REHEARSALS = 100;
const SPLIT_ID = /^[0-9a-f]{16}$/;

export interface SplitRecord {
  readonly split: string;
  readonly at: string;
  readonly shares: number;
  readonly threshold: number;
}

export interface Rehearsal {
  readonly at: string;
  readonly outcome: "recovered" | "failed";
  /** The splits the given shares name (one when they agree). */
  readonly splits: readonly string[];
  /** The indices of the shares that took part. */
  readonly shares: readonly number[];
  /** Why it failed (an error message: never share bytes). */
  readonly reason?: string;
}

export interface RehearsalRecord {
  readonly format: typeof FORMAT;
  /** Splits of the current root (`root rotate` empties it: its shares no longer work). */
  readonly splits: readonly SplitRecord[];
  readonly rehearsals: readonly Rehearsal[];
}

export function rehearsalsPath(home: string): string {
  return join(home, REHEARSALS_FILE);
}

const EMPTY: RehearsalRecord = { format: FORMAT, splits: [], rehearsals: [] };

/** The record, an empty one when there is none; a file that is not one fails. */
export async function readRehearsals(home: string): Promise<RehearsalRecord> {
  let text: string;
  try {
    text = await readFile(rehearsalsPath(home), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return EMPTY;
    return fail(
      "E_IO",
      `cannot read ${rehearsalsPath(home)} (${(e as NodeJS.ErrnoException).code})`,
    );
  }
  try {
    return parseRecord(JSON.parse(text));
  } catch {
    return fail(
      "E_KEYSTORE",
      `${rehearsalsPath(home)} is not a root rehearsal record: restore it or remove it (doctor then reports the splits as never test-recovered)`,
    );
  }
}

function parseRecord(v: unknown): RehearsalRecord {
  const o = v as RehearsalRecord;
  if (o?.format !== FORMAT || !Array.isArray(o.splits) || !Array.isArray(o.rehearsals))
    throw new Error("not a record");
  const time = (t: unknown) => typeof t === "string" && !Number.isNaN(Date.parse(t));
  const ints = (a: unknown) => Array.isArray(a) && a.every((n) => Number.isInteger(n));
  for (const s of o.splits)
    if (!SPLIT_ID.test(s?.split) || !time(s.at) || !Number.isInteger(s.shares))
      throw new Error("bad split");
  for (const r of o.rehearsals)
    if (
      !time(r?.at) ||
      (r.outcome !== "recovered" && r.outcome !== "failed") ||
      !Array.isArray(r.splits) ||
      !r.splits.every((s: unknown) => typeof s === "string" && SPLIT_ID.test(s)) ||
      !ints(r.shares)
    )
      throw new Error("bad rehearsal");
  return o;
}

async function update(home: string, fn: (r: RehearsalRecord) => RehearsalRecord): Promise<void> {
  await withLock(home, async () => {
    const next = fn(await readRehearsals(home));
    await writeFileAtomic(rehearsalsPath(home), `${JSON.stringify(next, null, 2)}\n`);
  });
}

/** `root split`: a new split of the current root exists. */
export function recordSplit(home: string, split: SplitRecord): Promise<void> {
  return update(home, (r) => ({ ...r, splits: [...r.splits, split] }));
}

/** `root rotate`: the splits so far no longer rebuild the root; their history stays. */
export function forgetSplits(home: string): Promise<void> {
  return update(home, (r) => ({ ...r, splits: [] }));
}

export function recordRehearsal(home: string, rehearsal: Rehearsal): Promise<void> {
  return update(home, (r) => ({
    ...r,
    rehearsals: [...r.rehearsals, rehearsal].slice(-MAX_REHEARSALS),
  }));
}

/** The newest rehearsal that involved `split`, and the newest successful one. */
export function lastRehearsals(
  record: RehearsalRecord,
  split: string,
): { last: Rehearsal | null; lastRecovered: Rehearsal | null } {
  let last: Rehearsal | null = null;
  let lastRecovered: Rehearsal | null = null;
  for (const r of record.rehearsals) {
    if (!r.splits.includes(split)) continue;
    if (!last || r.at >= last.at) last = r;
    if (r.outcome === "recovered" && (!lastRecovered || r.at >= lastRecovered.at))
      lastRecovered = r;
  }
  return { last, lastRecovered };
}
