/**
 * The anchor line: one signed checkpoint as canonical JSON `{hash, seq, server, signature, ts}`
 * on one line. `serve --checkpoint-anchor` appends these, `audit checkpoint` prints one, and
 * `audit verify --anchor` reads a file of them. The signature covers server, seq and hash (not
 * ts, which is informational).
 */
import { canonical } from "./canonical.js";
import type { SignedCheckpoint } from "./chain.js";

export interface AnchorLine extends SignedCheckpoint {
  server: string;
}

export function anchorLine(server: string, cp: SignedCheckpoint): string {
  return canonical({
    hash: cp.hash,
    seq: cp.seq,
    server,
    signature: cp.signature,
    ts: cp.ts,
  });
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Parses one line; throws an Error saying what is wrong (the caller adds the line number). */
export function parseAnchorLine(text: string): AnchorLine {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text);
  } catch {
    throw new Error("not JSON");
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new Error("not an object");
  const { hash, seq, server, signature, ts } = o;
  if (typeof server !== "string" || server === "") throw new Error("no server");
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1)
    throw new Error("seq is not a positive integer");
  if (typeof hash !== "string" || !HEX64.test(hash)) throw new Error("hash is not 64 hex digits");
  if (typeof signature !== "string" || signature === "") throw new Error("no signature");
  if (typeof ts !== "string") throw new Error("no ts");
  return { hash, seq, server, signature, ts };
}
