/**
 * `root shares verify`: a test recovery of the keystore root. The shares are combined in memory
 * and the result is checked against keystore.json's MAC (constant time): it must be the CURRENT
 * root, not one rotated away. Nothing is unlocked or written but the rehearsal record
 * (root-rehearsals.js), which names the split(s), the share indices, the time and the outcome.
 * Every buffer that held share or root bytes is zeroed before returning.
 */
import { readFile } from "node:fs/promises";
import { fail, isTensorSealError } from "../format/errors.js";
import { keystoreExists } from "./keystore-file.js";
import { missing, rootOpensKeystore } from "./keystore-store.js";
import { type Rehearsal, recordRehearsal } from "./root-rehearsals.js";
import { combineRootShares, parseShare, type RootShare } from "./root-shares.js";

export interface VerifiedSplit {
  readonly split: string;
  readonly shares: number[];
  readonly threshold: number;
  readonly total: number;
}

/** The split and index a file's header line names, even when the rest of it is damaged. */
const HEADER =
  /^tensorseal-root-share\/v1 keystore=[0-9a-f]{32} split=([0-9a-f]{16}) index=(\d{1,3}) /m;

export async function verifyRootShares(
  home: string,
  files: readonly string[],
  now: Date,
): Promise<VerifiedSplit> {
  const splits = new Set<string>();
  const indices = new Set<number>();
  const shares: RootShare[] = [];
  let root: Buffer | null = null;
  if (!(await keystoreExists(home))) missing(home);
  try {
    for (const f of files) {
      let text: string;
      try {
        text = await readFile(f, "utf8");
      } catch (e) {
        return fail(
          "E_IO",
          `cannot read the root share file ${f} (${(e as NodeJS.ErrnoException).code})`,
        );
      }
      const h = HEADER.exec(text);
      if (h) {
        splits.add(h[1]!);
        indices.add(Number(h[2]));
      }
      shares.push(parseShare(text, f));
    }
    root = await combineRootShares(shares);
    const first = shares[0]!;
    const ks = await rootOpensKeystore(home, root);
    if (first.keystoreId !== ks.id)
      fail(
        "E_KEYSTORE",
        `the shares belong to keystore ${first.keystoreId}, not to the keystore in ${home} (${String(ks.id)}): they cannot recover it`,
      );
    if (!ks.matches)
      fail(
        "E_KEYSTORE",
        `the shares do not rebuild the current root of the keystore in ${home} (shares of a root since rotated, a tampered share, or a wrong combination): split again with \`tensorseal root split\``,
      );
    const out: VerifiedSplit = {
      split: first.splitId,
      shares: shares.map((s) => s.index).sort((a, b) => a - b),
      threshold: first.threshold,
      total: first.shares,
    };
    await recordRehearsal(home, {
      at: now.toISOString(),
      outcome: "recovered",
      splits: [out.split],
      shares: out.shares,
    });
    return out;
  } catch (e) {
    if (!isTensorSealError(e)) throw e;
    const failed: Rehearsal = {
      at: now.toISOString(),
      outcome: "failed",
      splits: [...splits],
      shares: [...indices].sort((a, b) => a - b),
      reason: `${e.code}: ${e.message}`,
    };
    // A rehearsal that names no split (no share header read) leaves nothing for doctor to judge.
    // The failure itself is what the caller must see, even if the record cannot be written.
    if (failed.splits.length > 0) await recordRehearsal(home, failed).catch(() => {});
    throw e;
  } finally {
    root?.fill(0);
    for (const s of shares) s.share.fill(0);
  }
}
