/**
 * The service root key under M-of-N control: split into Shamir shares with the keystore's share
 * format (src/keys/root-shares.ts, the audited `shamir-secret-sharing` package), and rebuilt in
 * memory at start (`serve --root-shares`). The share files' "keystore" id is the first half of
 * the root's public check value, so shares of another root are refused before the database's
 * own check (meta.root_check) is even consulted.
 */
import { timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { fail } from "../format/errors.js";
import {
  combineRootShares,
  parseShare,
  type RootShare,
  splitRootKey,
} from "../keys/root-shares.js";
import { deriveRootKeys } from "./keys/sealing.js";
import { serviceRootId as rootId } from "./root-sealed.js";

/** What the `root.recover` audit entry names: share indices, never share bytes. */
export interface RootRecovery {
  readonly split: string;
  readonly shares: number[];
  readonly threshold: number;
}

export function splitServiceRoot(
  root: Buffer,
  shares: number,
  threshold: number,
): Promise<RootShare[]> {
  return splitRootKey(root, rootId(root), shares, threshold);
}

/** Reads and combines share files; too few, mixed or mistyped shares fail with the reason. */
export async function recoverServiceRoot(
  files: readonly string[],
): Promise<{ root: Buffer; recovery: RootRecovery }> {
  const shares: RootShare[] = [];
  for (const f of files) {
    const text = await readFile(f, "utf8").catch(() =>
      fail("E_USAGE", `cannot read the root share file ${f}`),
    );
    shares.push(parseShare(text, f));
  }
  const root = await combineRootShares(shares);
  if (rootId(root) !== shares[0]!.keystoreId) {
    root.fill(0);
    fail(
      "E_KEYSTORE",
      "the shares do not rebuild the root key they were split from (a corrupted or foreign share): check the share files",
    );
  }
  return {
    root,
    recovery: {
      split: shares[0]!.splitId,
      shares: shares.map((s) => s.index).sort((a, b) => a - b),
      threshold: shares[0]!.threshold,
    },
  };
}

/** What a test recovery names, read before any check (so a failure can be audited with it). */
export interface ShareRehearsal {
  split: string | null;
  shares: number[];
  threshold: number | null;
  total: number | null;
}

/**
 * A test recovery of the service root (POST /v1/root/shares/verify): parses and combines share
 * texts in memory and checks, in constant time, that they rebuild `rootCheck` (the running
 * root's check value). Fills `seen` as shares are read, so a failure is audited with the split
 * and indices that took part. Share and root buffers are zeroed before returning.
 */
export async function rehearseServiceRoot(
  texts: readonly string[],
  rootCheck: string,
  seen: ShareRehearsal,
): Promise<void> {
  const shares: RootShare[] = [];
  let root: Buffer | null = null;
  try {
    for (const [i, t] of texts.entries()) {
      const s = parseShare(t, `share ${i + 1} of the request`);
      shares.push(s);
      seen.split ??= s.splitId;
      seen.shares.push(s.index);
      seen.shares.sort((a, b) => a - b);
      seen.threshold ??= s.threshold;
      seen.total ??= s.shares;
    }
    const current = rootCheck.slice(0, 32);
    if (shares[0] && shares[0].keystoreId !== current)
      fail(
        "E_KEYSTORE",
        `the shares belong to root ${shares[0].keystoreId}, not to this service's root ${current}: they cannot recover it`,
      );
    root = await combineRootShares(shares);
    const got = Buffer.from(deriveRootKeys(root).check, "hex");
    const want = Buffer.from(rootCheck, "hex");
    if (got.length !== want.length || !timingSafeEqual(got, want))
      fail(
        "E_KEYSTORE",
        "the shares do not rebuild this service's root (a tampered share or a wrong combination): split again with `tensorseal service root split`",
      );
  } finally {
    root?.fill(0);
    for (const s of shares) s.share.fill(0);
  }
}
