/**
 * The hot loop: seal, open or verify a contiguous range of chunks read from a file descriptor
 * with positional I/O, into a sink (sink.ts): another file descriptor, a caller's memory, or
 * nowhere. It is the one loop over the chunk layout for every caller (openFile, verifyFile,
 * sealFile, openToMemory), the same code in a worker thread and on the main thread, so every
 * path produces identical bytes. Each chunk is exactly format/chunked.ts's sealChunk/openChunk
 * (AES-256-GCM, nonce = chunkNonce(base, k), no AAD); only the buffering differs: one read (and
 * at most one write) per batch of chunks, into reused buffers. The cipher work goes through the
 * native batch addon when it loaded (batch-native.ts), otherwise through node:crypto
 * (batch-js.ts); both run the same OpenSSL and produce the same bytes.
 *
 * With the addon, sealing and verifying a regular file map the job's input range (mapFile) and
 * encrypt or check it straight out of the page cache: no pread copy. Opening does not, whatever
 * the sink: GCM decryption may read each ciphertext byte twice (once for GHASH, once to
 * decrypt), and a mapping would let a process that writes the input between those reads get
 * plaintext released that differs from what was authenticated; a private pread copy cannot
 * change under us.
 */
import { fstatSync } from "node:fs";
import { NONCE_SIZE, TAG_SIZE } from "../format/chunked.js";
import type { Batch, BatchBuffers } from "./batch.js";
import { jsBatch } from "./batch-js.js";
import { type MappedInput, mappedBatch, nativeBatch } from "./batch-native.js";
import { type ResealTarget, resealBatch } from "./batch-reseal.js";
import { mapInputs, type NativeGcm, nativeGcm } from "./native-gcm.js";
import type { RangeSink } from "./sink.js";

/**
 * "verify" is "open" into a discarding sink; the mode only says which way the cipher runs.
 * "reseal" opens each batch with `keys` and seals it again with `resealKeys` (same chunk layout,
 * a new file's keys) into an fd sink at `outChunksOffset`: the plaintext exists only in the
 * thread's batch buffer, wiped when the job ends (engine/reseal.ts).
 */
export type RangeMode = "seal" | "open" | "verify" | "reseal";

/** About 8 MiB per read/write syscall: large enough to amortise, small enough to cache. */
export const BATCH_BYTES = 8 << 20;

export interface RangeSpec {
  readonly mode: RangeMode;
  readonly chunkSize: number;
  readonly plaintextLength: number;
  /** Offset of sealed chunk 0 in the sealed file (header, salt and commitment before it). */
  readonly chunksOffset: number;
  readonly firstChunk: number;
  /** Exclusive. */
  readonly endChunk: number;
  /** "reseal": offset of sealed chunk 0 in the output (its header may be longer or shorter). */
  readonly outChunksOffset?: number;
}

export interface RangeKeys {
  readonly aeadKey: Uint8Array;
  readonly baseNonce: Uint8Array;
  /** "reseal": the new file's chunk keys, which seal what `aeadKey` opened. */
  readonly resealKeys?: { readonly aeadKey: Uint8Array; readonly baseNonce: Uint8Array };
}

/** How many jobs read their input through a mapping and how many with pread (for tests). */
export const inputPaths = { mapped: 0, read: 0 };

/**
 * Processes the range batch by batch, yielding the plaintext bytes done after each batch so the
 * caller can report progress, check for an abort, or yield to its event loop. What reaches the
 * sink before an authentication failure is the sink's rule (sink.ts): nothing of the failing
 * batch for a file, nothing of the failing chunk (wiped) for memory.
 */
export function* processRange(
  spec: RangeSpec,
  keys: RangeKeys,
  inFd: number,
  sink: RangeSink,
  bufs: BatchBuffers,
): Generator<number, void, void> {
  const sealing = spec.mode === "seal";
  if (sealing && sink.kind === "memory") throw new TypeError("sealing writes to a file or nowhere");
  const reseal = spec.mode === "reseal" ? resealTarget(spec, keys, sink) : null;
  const cs = spec.chunkSize;
  const perBatch = Math.max(1, Math.floor(BATCH_BYTES / cs));
  const key = keys.aeadKey;
  const base = Buffer.from(keys.baseNonce.buffer, keys.baseNonce.byteOffset, NONCE_SIZE);
  const gcm = nativeGcm;
  const mapped = gcm !== null ? mapRange(gcm, spec, inFd, sink) : null;
  if (mapped) inputPaths.mapped++;
  else inputPaths.read++;
  try {
    for (let first = spec.firstChunk; first < spec.endChunk; first += perBatch) {
      const end = Math.min(first + perBatch, spec.endChunk);
      const ptStart = first * cs;
      const ptLen = Math.min(end * cs, spec.plaintextLength) - ptStart;
      const b: Batch = {
        sealing,
        cs,
        first,
        end,
        total: spec.plaintextLength,
        ptStart,
        ptLen,
        sealedStart: spec.chunksOffset + first * (cs + TAG_SIZE),
        sealedLen: ptLen + (end - first) * TAG_SIZE,
      };
      if (reseal) resealBatch(gcm, key, base, b, inFd, reseal, bufs);
      else if (mapped) mappedBatch(gcm!, key, base, b, mapped, sink, bufs);
      else if (gcm) nativeBatch(gcm, key, base, b, inFd, sink, bufs);
      else jsBatch(key, base, b, inFd, sink, bufs);
      yield ptLen;
    }
  } finally {
    // Deterministically, also when the caller stops early (abort) or a batch throws.
    if (mapped) gcm!.unmap(mapped.buffer);
  }
}

/**
 * Maps the job's whole input range when it is sealing, or verifying (opening into a discarding
 * sink), a regular file that holds all of it; otherwise (opening into a file or memory, a pipe
 * or device, a file already shorter than the range, a mapping refused) null, and the job reads
 * with pread exactly as without the addon, errors included. A file that shrinks after this
 * check makes the addon throw ERR_TSEAL_INPUT_CHANGED.
 */
function mapRange(
  gcm: NativeGcm,
  spec: RangeSpec,
  inFd: number,
  sink: RangeSink,
): MappedInput | null {
  const sealing = spec.mode === "seal";
  if (spec.mode === "reseal") return null; // it releases plaintext to the new cipher: pread only
  // Whatever the mode says, only plaintext that is discarded may come out of a mapping.
  if (!mapInputs || (!sealing && sink.kind !== "discard") || spec.endChunk <= spec.firstChunk) {
    return null;
  }
  const cs = spec.chunkSize;
  const ptStart = spec.firstChunk * cs;
  const ptEnd = Math.min(spec.endChunk * cs, spec.plaintextLength);
  const start = sealing ? ptStart : spec.chunksOffset + spec.firstChunk * (cs + TAG_SIZE);
  const end = sealing ? ptEnd : spec.chunksOffset + ptEnd + spec.endChunk * TAG_SIZE;
  if (end <= start) return null;
  try {
    const st = fstatSync(inFd);
    if (!st.isFile() || st.size < end) return null;
    const buffer = gcm.mapFile(inFd, start, end - start);
    return { buffer, view: new Uint8Array(buffer), start };
  } catch {
    return null;
  }
}

/** Where and under which keys a "reseal" range writes; anything else is a caller's bug. */
function resealTarget(spec: RangeSpec, keys: RangeKeys, sink: RangeSink): ResealTarget {
  const next = keys.resealKeys;
  if (!next || sink.kind !== "fd" || spec.outChunksOffset === undefined)
    throw new TypeError("resealing needs the new keys, an output offset and a file sink");
  return {
    fd: sink.fd,
    key: next.aeadKey,
    base: Buffer.from(next.baseNonce.buffer, next.baseNonce.byteOffset, NONCE_SIZE),
    shift: spec.outChunksOffset - spec.chunksOffset,
  };
}
