/**
 * Checks the log against checkpoints kept outside the database (`audit verify --anchor FILE`).
 * Each anchored checkpoint must carry a valid signature under the (pinned) public key and name
 * this log's server, the entry at its seq must have its hash, and the log must reach it. That
 * detects what the database alone cannot prove: the tail deleted together with the checkpoints
 * above it, and a chain rewritten consistently whose checkpoints were re-created or removed.
 */
import type { KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { fail } from "../../format/errors.js";
import { type AnchorLine, parseAnchorLine } from "./anchor-line.js";
import { checkCheckpoint } from "./chain.js";

export interface AnchorSummary {
  /** Checkpoint lines read from the anchor file. */
  lines: number;
  /** The highest seq among the lines whose signature verified (0 when none). */
  newestSeq: number;
}

/** The anchor file's lines (blank lines skipped), numbered from 1; E_IO if unreadable. */
export async function readAnchorFile(path: string): Promise<{ line: number; text: string }[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    fail("E_IO", `cannot read the anchor file ${path}: ${(e as Error).message}`, e);
  }
  return text
    .split("\n")
    .map((t, i) => ({ line: i + 1, text: t.trim() }))
    .filter((l) => l.text !== "");
}

export function checkAnchors(
  lines: { line: number; text: string }[],
  log: {
    server: string;
    key: KeyObject | null;
    lastSeq: number;
    hashes: ReadonlyMap<number, string>;
    checkpoints: ReadonlyMap<number, string>;
  },
  note: (p: string) => void,
): AnchorSummary {
  const good = new Map<number, AnchorLine & { line: number }>();
  let newestSeq = 0;
  for (const { line, text } of lines) {
    let a: AnchorLine;
    try {
      a = parseAnchorLine(text);
    } catch (e) {
      note(`anchor line ${line}: not a checkpoint line (${(e as Error).message})`);
      continue;
    }
    const at = `anchored checkpoint ${a.seq} (anchor line ${line})`;
    if (a.server !== log.server) {
      note(`${at} is for server ${a.server}, not this log's server ${log.server}`);
      continue;
    }
    if (!log.key || !checkCheckpoint(log.key, a.server, a.seq, a.hash, a.signature)) {
      note(`${at} has a bad signature under the audit public key (forged)`);
      continue;
    }
    const other = good.get(a.seq);
    if (other && other.hash !== a.hash)
      note(`${at} contradicts anchor line ${other.line}: two signed hashes for one seq`);
    good.set(a.seq, { ...a, line });
    newestSeq = Math.max(newestSeq, a.seq);
    if (a.seq > log.lastSeq) {
      note(`rollback: the log ends at entry ${log.lastSeq} but ${at} was signed`);
      continue;
    }
    const h = log.hashes.get(a.seq);
    if (h === undefined) note(`entry ${a.seq} is missing, but ${at} names it`);
    else if (h !== a.hash) note(`entry ${a.seq} differs from ${at} (edited or history rewritten)`);
    const stored = log.checkpoints.get(a.seq);
    if (stored === undefined) note(`${at} is missing from the database (deleted)`);
    else if (stored !== a.hash) note(`${at} differs from the database's checkpoint ${a.seq}`);
  }
  return { lines: lines.length, newestSeq };
}
