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
 * With the addon, sealing and verifying a regular file map each batch's input (mapFile) and
 * encrypt or check it straight out of the page cache: no pread copy. Opening does not, whatever
 * the sink: GCM decryption may read each ciphertext byte twice (once for GHASH, once to
 * decrypt), and a mapping would let a process that writes the input between those reads get
 * plaintext released that differs from what was authenticated; a private pread copy cannot
 * change under us.
 */
import { fstatSync } from "node:fs";
import { NONCE_SIZE, TAG_SIZE } from "../format/chunked.js";
import { type Batch, type BatchBuffers, inputChanged } from "./batch.js";
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
export const BATCH_BYTES = 4 << 20;
/**
 * Batches written around the page cache are smaller: each is written on the libuv pool while
 * the thread does the next ones (BatchBuffers), so the device always has a write and an 8 MiB
 * job still overlaps most of its batches; 2 MiB x 3 buffers per thread kept the peak RSS where
 * one 4 MiB buffer had it (1 GiB file -> file: 84 MiB).
 */
export const DIRECT_BATCH_BYTES = 2 << 20;

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
  const batchBytes =
    sink.kind === "fd" && sink.directFd !== undefined ? DIRECT_BATCH_BYTES : BATCH_BYTES;
  const perBatch = Math.max(1, Math.floor(batchBytes / cs));
  const key = keys.aeadKey;
  const base = Buffer.from(keys.baseNonce.buffer, keys.baseNonce.byteOffset, NONCE_SIZE);
  const gcm = nativeGcm;
  const mapping = gcm !== null && mapsRange(spec, inFd, sink);
  if (mapping) inputPaths.mapped++;
  else inputPaths.read++;
  let mapped: MappedInput | null = null;
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
      if (mapping) mapped = mapBatch(gcm!, b, inFd);
      if (reseal) resealBatch(gcm, key, base, b, inFd, reseal, bufs);
      else if (mapped) {
        mappedBatch(gcm!, key, base, b, mapped, sink, bufs);
        // Unmapped batch by batch: mapped page-cache pages count toward the process's RSS, so
        // a range mapped whole (the main thread's, up to the whole file) raised the peak by its
        // size (256 MiB sealed on the main thread alone peaked at 317 MiB).
        gcm!.unmap(mapped.buffer);
        mapped = null;
      } else if (gcm) nativeBatch(gcm, key, base, b, inFd, sink, bufs);
      else jsBatch(key, base, b, inFd, sink, bufs);
      yield ptLen;
    }
  } finally {
    // Deterministically, also when the caller stops early (abort) or a batch throws.
    if (mapped) gcm!.unmap(mapped.buffer);
  }
}

/** One batch's input range, mapped (null: nothing to map); a file that shrank since mapsRange checked it is E_IO. */
function mapBatch(gcm: NativeGcm, b: Batch, inFd: number): MappedInput | null {
  const start = b.sealing ? b.ptStart : b.sealedStart;
  const length = b.sealing ? b.ptLen : b.sealedLen;
  if (length === 0) return null; // an empty final chunk: nothing to map (pread reads nothing)
  let buffer: ArrayBuffer;
  try {
    buffer = gcm.mapFile(inFd, start, length);
  } catch (e) {
    if (e instanceof RangeError) inputChanged();
    throw e;
  }
  return { buffer, view: new Uint8Array(buffer), start };
}

/**
 * Whether the job maps its input (batch by batch, mapBatch): when it is sealing, or verifying
 * (opening into a discarding sink), a regular file that holds all of the range now; otherwise
 * (opening into a file or memory, a pipe or device, a file already shorter than the range) the
 * job reads with pread exactly as without the addon, errors included. A file that shrinks after
 * this check makes a later mapping or the addon fail with E_IO (input changed).
 */
function mapsRange(spec: RangeSpec, inFd: number, sink: RangeSink): boolean {
  const sealing = spec.mode === "seal";
  if (spec.mode === "reseal") return false; // it releases plaintext to the new cipher: pread only
  // Whatever the mode says, only plaintext that is discarded may come out of a mapping.
  if (!mapInputs || (!sealing && sink.kind !== "discard") || spec.endChunk <= spec.firstChunk) {
    return false;
  }
  const cs = spec.chunkSize;
  const ptStart = spec.firstChunk * cs;
  const ptEnd = Math.min(spec.endChunk * cs, spec.plaintextLength);
  const start = sealing ? ptStart : spec.chunksOffset + spec.firstChunk * (cs + TAG_SIZE);
  const end = sealing ? ptEnd : spec.chunksOffset + ptEnd + spec.endChunk * TAG_SIZE;
  if (end <= start) return false;
  try {
    const st = fstatSync(inFd);
    return st.isFile() && st.size >= end;
  } catch {
    return false;
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
