/**
 * M-of-N recovery of the keystore root key with Shamir's secret sharing over GF(2^8), from the
 * audited `shamir-secret-sharing` package (no home-made polynomial code). A share file is text:
 *
 *   # comment lines (what the file is, how to recover)
 *   tensorseal-root-share/v1 keystore=ID split=SPLIT index=I shares=N threshold=M
 *   share=BASE64(33 bytes: the library's share, y-values then its x-coordinate)
 *   checksum=HEX(SHA-256(header line || "\n" || share line)[0..8])
 *
 * The checksum only catches typos when a share is typed back in; it is not a MAC. What proves a
 * rebuilt root is right is the keystore itself (its MAC, or the key check of a key-file root),
 * verified before anything is written. `split` is random per split, so shares of two splits (or
 * of a root that was since rotated) are never combined by mistake.
 */
import { createHash, randomBytes } from "node:crypto";
import { combine, split } from "shamir-secret-sharing";
import { fail } from "../format/errors.js";
import { ROOT_KEY_SIZE } from "./root-key.js";

const MAGIC = "tensorseal-root-share/v1";
const MAX_SHARES = 255;

export interface RootShare {
  readonly keystoreId: string;
  readonly splitId: string;
  readonly index: number;
  readonly shares: number;
  readonly threshold: number;
  readonly share: Buffer;
}

export async function splitRootKey(
  root: Buffer,
  keystoreId: string,
  shares: number,
  threshold: number,
): Promise<RootShare[]> {
  if (!Number.isInteger(shares) || shares < 2 || shares > MAX_SHARES) {
    fail("E_USAGE", `--shares must be 2..${MAX_SHARES}, got ${shares}`);
  }
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > shares) {
    fail("E_USAGE", `--threshold must be 2..${shares} (the number of shares), got ${threshold}`);
  }
  const parts = await split(new Uint8Array(root), shares, threshold);
  const splitId = randomBytes(8).toString("hex");
  return parts.map((p, i) => ({
    keystoreId,
    splitId,
    index: i + 1,
    shares,
    threshold,
    share: Buffer.from(p),
  }));
}

function headerLine(s: Omit<RootShare, "share">): string {
  return `${MAGIC} keystore=${s.keystoreId} split=${s.splitId} index=${s.index} shares=${s.shares} threshold=${s.threshold}`;
}

function checksum(header: string, shareLine: string): string {
  return createHash("sha256").update(`${header}\n${shareLine}`).digest("hex").slice(0, 16);
}

export function formatShare(
  s: RootShare,
  recoverWith = "tensorseal root recover SHARE_FILE...",
): string {
  const header = headerLine(s);
  const shareLine = `share=${s.share.toString("base64")}`;
  return [
    `# TensorSeal root key share ${s.index} of ${s.shares}: any ${s.threshold} shares rebuild the root key of keystore ${s.keystoreId}.`,
    `# Keep it secret and offline. Recover with: ${recoverWith}`,
    header,
    shareLine,
    `checksum=${checksum(header, shareLine)}`,
    "",
  ].join("\n");
}

/** Parses one share file; `where` names it in errors. A typo fails the checksum. */
export function parseShare(text: string, where: string): RootShare {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith("#"));
  const bad: (why: string) => never = (why) =>
    fail("E_KEY", `${where} is not a valid root key share (${why}): check the file`);
  if (lines.length !== 3) bad(`expected 3 lines, found ${lines.length}`);
  const [header, shareLine, sumLine] = lines as [string, string, string];
  const m =
    /^tensorseal-root-share\/v1 keystore=([0-9a-f]{32}) split=([0-9a-f]{16}) index=(\d{1,3}) shares=(\d{1,3}) threshold=(\d{1,3})$/.exec(
      header,
    );
  if (!m) bad("the header line is not tensorseal-root-share/v1 ...");
  const sm = /^share=([A-Za-z0-9+/=]+)$/.exec(shareLine);
  const cm = /^checksum=([0-9a-f]{16})$/.exec(sumLine);
  if (!sm || !cm) bad("missing share= or checksum= line");
  if (checksum(header, shareLine) !== cm[1]) bad("checksum mismatch: a character was mistyped");
  const share = Buffer.from(sm[1]!, "base64");
  if (share.length !== ROOT_KEY_SIZE + 1 || share.toString("base64") !== sm[1])
    bad("the share is not 33 bytes of base64");
  const [index, shares, threshold] = [m[3], m[4], m[5]].map(Number) as [number, number, number];
  if (threshold < 2 || threshold > shares || index < 1 || index > shares)
    bad("index, shares and threshold are inconsistent");
  return { keystoreId: m[1]!, splitId: m[2]!, index, shares, threshold, share };
}

/**
 * Rebuilds the root key from shares of one split. Refuses mixed splits, duplicates and fewer
 * shares than the threshold; the caller must still verify the result against the keystore.
 */
export async function combineRootShares(shares: readonly RootShare[]): Promise<Buffer> {
  if (shares.length === 0) fail("E_USAGE", "no share given");
  const first = shares[0]!;
  for (const s of shares) {
    if (s.keystoreId !== first.keystoreId || s.splitId !== first.splitId) {
      fail(
        "E_USAGE",
        `share ${s.index} comes from another split (keystore ${s.keystoreId}, split ${s.splitId}) than share ${first.index}: use shares of one split`,
      );
    }
  }
  const indices = new Set(shares.map((s) => s.index));
  if (indices.size !== shares.length) fail("E_USAGE", "the same share was given twice");
  if (shares.length < first.threshold) {
    fail(
      "E_USAGE",
      `${shares.length} share(s) given, but this split needs ${first.threshold} of ${first.shares}`,
    );
  }
  // The copies handed to the library are zeroed too: only the returned Buffer holds the root.
  const parts = shares.map((s) => new Uint8Array(s.share));
  let root: Uint8Array;
  try {
    root = await combine(parts);
  } catch (e) {
    // Two shares with one x-coordinate under different indices: an edited file, not a bug.
    return fail(
      "E_KEY",
      `the shares cannot be combined (${(e as Error).message}): check the share files`,
    );
  } finally {
    for (const p of parts) p.fill(0);
  }
  const out = Buffer.from(root);
  root.fill(0);
  return out;
}
