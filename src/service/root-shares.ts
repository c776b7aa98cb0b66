/**
 * The service root key under M-of-N control: split into Shamir shares with the keystore's share
 * format (src/keys/root-shares.ts, the audited `shamir-secret-sharing` package), and rebuilt in
 * memory at start (`serve --root-shares`). The share files' "keystore" id is the first half of
 * the root's public check value, so shares of another root are refused before the database's
 * own check (meta.root_check) is even consulted.
 */
import { readFile } from "node:fs/promises";
import { fail } from "../format/errors.js";
import {
  combineRootShares,
  parseShare,
  type RootShare,
  splitRootKey,
} from "../keys/root-shares.js";
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
