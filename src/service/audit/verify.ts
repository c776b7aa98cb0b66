/**
 * Verifies an audit log, read from the database or over the API (source.ts): every entry's
 * hash, the sequence (1, 2, 3, … with no gap), each entry's `prev` link, every checkpoint's signature and that it
 * matches the entry it names, that no checkpoint is missing, and that the log does not end
 * before its newest checkpoint (a rollback). An attacker who rewrites the chain consistently
 * after an edit is caught at the next checkpoint, since they cannot sign a new one.
 * Checkpoints may stand at any seq (every N entries, or on time); only those at multiples of N
 * must exist. With `anchor`, checkpoints kept outside the database are checked too.
 *
 * What the verifier expects comes from its caller, never from the log: N is `checkpointEvery`
 * (default 64, what every service signs at), not the interval the database or server reports —
 * an attacker who rewrites the chain can also set that to 0 and delete the checkpoints. And
 * `maxUnsigned` bounds the entries after the newest checkpoint (0 after a clean shutdown, which
 * signs the head).
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import type { Database } from "../db/schema.js";
import { DEFAULT_CHECKPOINT_EVERY } from "../state.js";
import { type AnchorSummary, checkAnchors, readAnchorFile } from "./anchor-verify.js";
import { canonical } from "./canonical.js";
import { checkCheckpoint, GENESIS, sha256 } from "./chain.js";
import { type AuditSource, databaseSource, type SourceEntry } from "./source.js";
import { allAuditRows } from "./store.js";

export interface VerifyOptions {
  /** The pinned audit public key (raw Ed25519, base64); else the one the source reports. */
  publicKey?: string;
  /** An anchor file of checkpoints kept outside the database. */
  anchor?: string;
  /** A checkpoint must exist at every multiple of this (default 64; 0 = none required). */
  checkpointEvery?: number;
  /** At most this many entries may follow the newest checkpoint (default: no limit). */
  maxUnsigned?: number;
}

export interface VerifyResult {
  ok: boolean;
  entries: number;
  checkpoints: number;
  lastSeq: number;
  lastHash: string;
  /** Entries after the newest checkpoint (signed by nothing but the chain). */
  unsigned: number;
  /** The N whose multiples had to carry a checkpoint (the verifier's, not the log's). */
  checkpointEvery: number;
  publicKey: string;
  /** true when the public key was given by the caller, not read from the database. */
  pinned: boolean;
  /** Present when an anchor file was given. */
  anchor?: AnchorSummary;
  problems: string[];
}

const MAX_PROBLEMS = 100;

export function ed25519FromRaw(b64: string): KeyObject {
  return createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(b64, "base64").toString("base64url") },
    format: "jwk",
  });
}

/** Verifies the log in the service database (`audit verify --db`). */
export function verifyAuditLog(d: Database, opts: VerifyOptions = {}): Promise<VerifyResult> {
  return verifyAuditSource(databaseSource(d), opts);
}

/**
 * Verifies a log from any source. The log may grow while it is read (a live service; over the
 * API every read appends an entry), so it is checked up to the head reached: entries are read
 * to the end, then the checkpoints, then entries again up to the newest checkpoint if it lies
 * beyond. Every checkpoint listed existed when the list was read, and so did its entry and
 * every multiple of N below it: a checkpoint the log never reaches is a rollback, not growth.
 */
export async function verifyAuditSource(
  source: AuditSource,
  opts: VerifyOptions = {},
): Promise<VerifyResult> {
  const every = opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
  // Read first: an unreadable anchor file is an I/O error, not a verdict on the log.
  const anchorLines = opts.anchor === undefined ? null : await readAnchorFile(opts.anchor);
  const problems: string[] = [];
  const note = (p: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
  };
  const hashes = new Map<number, string>();
  let expect = 1;
  let prev = GENESIS;
  let count = 0;
  const take = (e: SourceEntry) => {
    count++;
    if (e.seq !== expect) note(`entries ${expect}..${e.seq - 1} are missing (deleted)`);
    checkEntry(e.seq, e.text, e.hash, prev, note);
    hashes.set(e.seq, e.hash);
    prev = e.hash;
    expect = e.seq + 1;
  };
  for await (const e of source.entries(0)) take(e);
  const cps = (await source.checkpoints()).sort((a, b) => a.seq - b.seq);
  // The source's own `every` is not used: it is as trustworthy as the log it describes.
  const { server, publicKey: claimed } = await source.info();
  const publicKey = opts.publicKey ?? claimed;
  const newest = cps.at(-1)?.seq ?? 0;
  if (newest >= expect) {
    for await (const e of source.entries(expect - 1)) {
      if (e.seq > newest) break;
      take(e);
    }
  }
  const lastSeq = expect - 1;
  let key: KeyObject | null = null;
  try {
    key = ed25519FromRaw(publicKey);
  } catch {
    note("the audit public key is missing or not an Ed25519 key");
  }
  const seen = new Set<number>();
  for (const cp of cps) {
    seen.add(cp.seq);
    if (key && !checkCheckpoint(key, server, cp.seq, cp.hash, cp.signature))
      note(`checkpoint ${cp.seq} has a bad signature`);
    if (cp.seq > lastSeq)
      note(`rollback: the log ends at entry ${lastSeq} but checkpoint ${cp.seq} was signed`);
    else if (hashes.get(cp.seq) !== cp.hash)
      note(`entry ${cp.seq} differs from its signed checkpoint (history rewritten)`);
  }
  if (every > 0) {
    for (let s = every; s <= lastSeq; s += every)
      if (!seen.has(s)) note(`checkpoint ${s} is missing (deleted)`);
  }
  const signedUpTo = cps.filter((c) => c.seq <= lastSeq).at(-1)?.seq ?? 0;
  const unsigned = lastSeq - signedUpTo;
  if (opts.maxUnsigned !== undefined && unsigned > opts.maxUnsigned)
    note(
      `${unsigned} entries after checkpoint ${signedUpTo} are signed by no checkpoint (at most ${opts.maxUnsigned} allowed)`,
    );
  const anchor = anchorLines
    ? checkAnchors(
        anchorLines,
        {
          server,
          key,
          lastSeq,
          hashes,
          checkpoints: new Map(cps.map((c) => [c.seq, c.hash])),
        },
        note,
      )
    : undefined;
  return {
    ok: problems.length === 0,
    entries: count,
    checkpoints: cps.length,
    lastSeq,
    lastHash: prev,
    unsigned,
    checkpointEvery: every,
    publicKey,
    pinned: opts.publicKey !== undefined,
    ...(anchor ? { anchor } : {}),
    problems,
  };
}

function checkEntry(
  seq: number,
  text: string,
  hash: string,
  prev: string,
  note: (p: string) => void,
): void {
  let e: { seq?: unknown; prev?: unknown };
  try {
    e = JSON.parse(text);
    if (canonical(e) !== text) throw new Error("not canonical");
  } catch {
    note(`entry ${seq} is not canonical JSON (edited)`);
    return;
  }
  if (sha256(text) !== hash) note(`entry ${seq} does not match its hash (edited)`);
  if (e.seq !== seq)
    note(`entry ${seq} says it is entry ${String(e.seq)} (reordered or renumbered)`);
  if (e.prev !== prev)
    note(`entry ${seq} does not link to entry ${seq - 1} (inserted, deleted or reordered)`);
}

/** Every entry as one JSON line (the stored canonical text plus its hash), for a SIEM. */
export async function* exportAuditLog(d: Database): AsyncGenerator<string> {
  for await (const row of allAuditRows(d)) {
    yield `${JSON.stringify({ ...JSON.parse(row.entry), hash: row.hash })}\n`;
  }
}
