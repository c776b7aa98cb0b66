/**
 * Decrypts a contiguous range of chunks of a sealed file straight into shared memory: one
 * positional read per batch into a reused buffer, then each chunk opened into its slot of the
 * output (the native addon's openBatch when it loaded, otherwise node:crypto, which has to
 * copy its own output once). The same code runs on the main thread and in load workers.
 * A chunk that fails authentication is wiped from the output before E_DECRYPT is raised; the
 * caller wipes the rest and never hands the buffer out.
 */
import { createDecipheriv } from "node:crypto";
import { readSync } from "node:fs";
import { chunkNonce, TAG_SIZE } from "../format/chunked.js";
import { fail } from "../format/errors.js";
import { nativeGcm } from "./native-gcm.js";

/** About 8 MiB of sealed bytes per read. */
const BATCH_BYTES = 8 << 20;

export interface ChunkRange {
  readonly fd: number;
  readonly chunkSize: number;
  readonly plaintextLength: number;
  /** Offset of sealed chunk 0 in the file. */
  readonly chunksOffset: number;
  readonly firstChunk: number;
  /** Exclusive. */
  readonly endChunk: number;
}

export interface RangeKeys {
  readonly aeadKey: Uint8Array;
  readonly baseNonce: Uint8Array;
}

function authFailed(k: number): never {
  return fail("E_DECRYPT", `chunk ${k} failed authentication: the file was modified`);
}

/** Plaintext of chunks [firstChunk, endChunk) into `out` at their plaintext offsets. */
export function decryptRangeInto(range: ChunkRange, keys: RangeKeys, out: Uint8Array): void {
  const cs = range.chunkSize;
  const perBatch = Math.max(1, Math.floor(BATCH_BYTES / (cs + TAG_SIZE)));
  const base = Buffer.from(keys.baseNonce.buffer, keys.baseNonce.byteOffset, keys.baseNonce.length);
  const key = Buffer.from(keys.aeadKey.buffer, keys.aeadKey.byteOffset, keys.aeadKey.length);
  let buf = Buffer.alloc(0);
  try {
    for (let first = range.firstChunk; first < range.endChunk; first += perBatch) {
      const end = Math.min(first + perBatch, range.endChunk);
      const ptStart = first * cs;
      const ptLen = Math.min(end * cs, range.plaintextLength) - ptStart;
      const sealedLen = ptLen + (end - first) * TAG_SIZE;
      if (buf.length < sealedLen) buf = Buffer.allocUnsafeSlow(sealedLen);
      readFully(range.fd, buf, sealedLen, range.chunksOffset + first * (cs + TAG_SIZE));
      if (nativeGcm) {
        const r = nativeGcm.openBatch(
          key,
          base,
          first,
          end - first,
          cs,
          buf,
          0,
          sealedLen,
          out,
          ptStart,
        );
        if (r < 0) authFailed(-1 - r);
      } else {
        openWithNodeCrypto(key, base, first, end, range.plaintextLength, cs, buf, out);
      }
    }
  } finally {
    buf.fill(0);
  }
}

function openWithNodeCrypto(
  key: Buffer,
  base: Buffer,
  first: number,
  end: number,
  total: number,
  cs: number,
  buf: Buffer,
  out: Uint8Array,
): void {
  let at = 0;
  for (let k = first; k < end; k++) {
    const n = Math.min(cs, total - k * cs);
    const d = createDecipheriv("aes-256-gcm", key, chunkNonce(base, k));
    d.setAuthTag(buf.subarray(at + n, at + n + TAG_SIZE));
    const dst = out.subarray(k * cs, k * cs + n);
    const head = d.update(buf.subarray(at, at + n));
    dst.set(head);
    head.fill(0);
    try {
      d.final();
    } catch {
      dst.fill(0);
      authFailed(k);
    }
    at += n + TAG_SIZE;
  }
}

function readFully(fd: number, buf: Buffer, length: number, position: number): void {
  let off = 0;
  while (off < length) {
    const n = readSync(fd, buf, off, length - off, position + off);
    if (n === 0) fail("E_TRUNCATED", "the sealed file ended early: it changed while being read");
    off += n;
  }
}
