/**
 * The hot loop: seal, open or verify a contiguous range of chunks between two file descriptors
 * with positional I/O. It is the same code in a worker thread and on the main thread, so the
 * parallel and single-threaded paths produce identical bytes. Each chunk is exactly
 * format/chunked.ts's sealChunk/openChunk (AES-256-GCM, nonce = chunkNonce(base, k), no AAD);
 * only the buffering differs: one read and one write per batch of chunks, into reused buffers.
 * The cipher work goes through the native batch addon when it loaded (native-gcm.ts), otherwise
 * through node:crypto; both run the same OpenSSL and produce the same bytes.
 *
 * With the addon, sealing and verifying a regular file map the job's input range (mapFile) and
 * encrypt or check it straight out of the page cache: no pread copy. Opening does not: GCM
 * decryption may read each ciphertext byte twice (once for GHASH, once to decrypt), and a
 * mapping would let a process that writes the input between those reads get plaintext released
 * that differs from what was authenticated; a private pread copy cannot change under us.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { fstatSync, readvSync, writevSync } from "node:fs";
import { chunkNonce, NONCE_SIZE, TAG_SIZE } from "../format/chunked.js";
import { fail } from "../format/errors.js";
import { readExactSync, writeAllSync } from "./fsutil.js";
import { mapInputs, type NativeGcm, nativeGcm } from "./native-gcm.js";

export type RangeMode = "seal" | "open" | "verify";

/** About 8 MiB per read/write syscall: large enough to amortise, small enough to cache. */
export const BATCH_BYTES = 8 << 20;
/**
 * Node's cipher.update allocates its output; feeding 128 KiB at a time keeps that allocation
 * small and cache-hot (measured ~20% faster than one 1 MiB update), then it is copied out.
 */
const PIECE = 128 << 10;

export interface RangeSpec {
  readonly mode: RangeMode;
  readonly chunkSize: number;
  readonly plaintextLength: number;
  /** Offset of sealed chunk 0 in the sealed file (header, salt and commitment before it). */
  readonly chunksOffset: number;
  readonly firstChunk: number;
  /** Exclusive. */
  readonly endChunk: number;
}

export interface RangeKeys {
  readonly aeadKey: Uint8Array;
  readonly baseNonce: Uint8Array;
}

/** Reusable I/O buffers (one pair per thread); grown on demand, never shrunk. */
export class BatchBuffers {
  private a = Buffer.alloc(0);
  private b = Buffer.alloc(0);
  private dirtyA = false;
  private dirtyB = false;
  input(n: number): Buffer {
    if (this.a.length < n) this.a = Buffer.allocUnsafeSlow(n);
    this.dirtyA = true;
    return this.a.subarray(0, n);
  }
  output(n: number): Buffer {
    if (this.b.length < n) this.b = Buffer.allocUnsafeSlow(n);
    this.dirtyB = true;
    return this.b.subarray(0, n);
  }
  /** The output buffer, for sealed bytes only: nothing to wipe afterwards. */
  sealedOutput(n: number): Buffer {
    if (this.b.length < n) this.b = Buffer.allocUnsafeSlow(n);
    return this.b.subarray(0, n);
  }
  /** The buffers may have held plaintext: clear them when a job ends. */
  wipe(): void {
    if (this.dirtyA) this.a.fill(0);
    if (this.dirtyB) this.b.fill(0);
    this.dirtyA = false;
    this.dirtyB = false;
  }
}

/** How many jobs read their input through a mapping and how many with pread (for tests). */
export const inputPaths = { mapped: 0, read: 0 };

/**
 * Processes the range batch by batch, yielding the plaintext bytes done after each batch so the
 * caller can report progress, check for an abort, or yield to its event loop. When opening, a
 * batch is written only after every chunk in it authenticated: unauthenticated plaintext never
 * reaches the output file.
 */
export function* processRange(
  spec: RangeSpec,
  keys: RangeKeys,
  inFd: number,
  outFd: number | null,
  bufs: BatchBuffers,
): Generator<number, void, void> {
  const cs = spec.chunkSize;
  const perBatch = Math.max(1, Math.floor(BATCH_BYTES / cs));
  const key = keys.aeadKey;
  const base = Buffer.from(keys.baseNonce.buffer, keys.baseNonce.byteOffset, NONCE_SIZE);
  const gcm = nativeGcm;
  const mapped = gcm !== null ? mapRange(gcm, spec, inFd, outFd) : null;
  if (mapped) inputPaths.mapped++;
  else inputPaths.read++;
  try {
    for (let first = spec.firstChunk; first < spec.endChunk; first += perBatch) {
      const end = Math.min(first + perBatch, spec.endChunk);
      const ptStart = first * cs;
      const ptLen = Math.min(end * cs, spec.plaintextLength) - ptStart;
      const b: Batch = {
        sealing: spec.mode === "seal",
        cs,
        first,
        end,
        total: spec.plaintextLength,
        ptStart,
        ptLen,
        sealedStart: spec.chunksOffset + first * (cs + TAG_SIZE),
        sealedLen: ptLen + (end - first) * TAG_SIZE,
      };
      if (mapped) mappedBatch(gcm!, key, base, b, mapped, outFd, bufs);
      else if (gcm) nativeBatch(gcm, key, base, b, inFd, outFd, bufs);
      else jsBatch(key, base, b, inFd, outFd, bufs);
      yield ptLen;
    }
  } finally {
    // Deterministically, also when the caller stops early (abort) or a batch throws.
    if (mapped) gcm!.unmap(mapped.buffer);
  }
}

/** One batch of chunks [first, end) of a `total`-byte message, and where it lies. */
interface Batch {
  readonly sealing: boolean;
  readonly cs: number;
  readonly first: number;
  readonly end: number;
  readonly total: number;
  readonly ptStart: number;
  readonly ptLen: number;
  readonly sealedStart: number;
  readonly sealedLen: number;
}

/** A job's input range, mapped: `view[i]` is the input file's byte `start + i`. */
interface MappedInput {
  readonly buffer: ArrayBuffer;
  readonly view: Uint8Array;
  readonly start: number;
}

/**
 * Maps the job's whole input range when it is sealing or verifying a regular file that holds
 * all of it; otherwise (opening, a pipe or device, a file already shorter than the range, a
 * mapping refused) null, and the job reads with pread exactly as without the addon, errors
 * included. A file that shrinks after this check makes the addon throw ERR_TSEAL_INPUT_CHANGED.
 */
function mapRange(
  gcm: NativeGcm,
  spec: RangeSpec,
  inFd: number,
  outFd: number | null,
): MappedInput | null {
  const sealing = spec.mode === "seal";
  // Not sealing with an output is opening, whatever the mode says (as in nativeBatch).
  if (!mapInputs || (!sealing && outFd !== null) || spec.endChunk <= spec.firstChunk) return null;
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

/**
 * Straight from the mapping: sealing encrypts into the output buffer (ciphertext only) and
 * writes it; verifying decrypts into the addon's scratch memory and discards it.
 */
function mappedBatch(
  gcm: NativeGcm,
  key: Uint8Array,
  base: Buffer,
  b: Batch,
  m: MappedInput,
  outFd: number | null,
  bufs: BatchBuffers,
): void {
  const count = b.end - b.first;
  let r: number;
  try {
    if (b.sealing) {
      const out = bufs.sealedOutput(b.sealedLen);
      gcm.sealBatch(key, base, b.first, count, b.cs, m.view, b.ptStart - m.start, b.ptLen, out, 0);
      if (outFd !== null) writeAllSync(outFd, out, b.sealedStart);
      return;
    }
    const at = b.sealedStart - m.start;
    r = gcm.openBatch(key, base, b.first, count, b.cs, m.view, at, b.sealedLen, null, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException)?.code === "ERR_TSEAL_INPUT_CHANGED") {
      fail("E_IO", "input ended early: the file changed while it was being read");
    }
    throw e;
  }
  if (r < 0) authFailed(-1 - r);
}

function authFailed(k: number): never {
  return fail("E_DECRYPT", `chunk ${k} failed authentication: the file was modified`);
}

/**
 * The native addon, in place in one buffer laid out as the sealed batch: sealing reads each
 * chunk's plaintext straight into its slot (readv) and fills in the tags; opening decrypts each
 * chunk onto itself and, once all of them authenticated, writes the plaintext slots (writev).
 * Verifying decrypts into the addon's scratch memory and leaves the buffer alone.
 */
function nativeBatch(
  gcm: NativeGcm,
  key: Uint8Array,
  base: Buffer,
  b: Batch,
  inFd: number,
  outFd: number | null,
  bufs: BatchBuffers,
): void {
  const count = b.end - b.first;
  const buf = bufs.input(b.sealedLen);
  if (b.sealing) {
    vectoredSync(readvSync, inFd, plaintextSlots(buf, b), b.ptStart);
    gcm.sealInPlace(key, base, b.first, count, b.cs, buf, 0, b.sealedLen);
    if (outFd !== null) writeAllSync(outFd, buf, b.sealedStart);
    return;
  }
  readExactSync(inFd, buf, b.sealedStart);
  const r =
    outFd === null
      ? gcm.openBatch(key, base, b.first, count, b.cs, buf, 0, b.sealedLen, null, 0)
      : gcm.openInPlace(key, base, b.first, count, b.cs, buf, 0, b.sealedLen);
  if (r < 0) authFailed(-1 - r);
  if (outFd !== null) vectoredSync(writevSync, outFd, plaintextSlots(buf, b), b.ptStart);
}

/** Views of each chunk's plaintext bytes in a sealed-layout batch buffer (empty ones left out). */
function plaintextSlots(buf: Buffer, b: Batch): Buffer[] {
  const slots: Buffer[] = [];
  for (let k = b.first; k < b.end; k++) {
    const at = (k - b.first) * (b.cs + TAG_SIZE);
    const n = Math.min(b.cs, b.total - k * b.cs);
    if (n > 0) slots.push(buf.subarray(at, at + n));
  }
  return slots;
}

/** Positional readv/writev until every view is done: one call may move fewer bytes. */
function vectoredSync(
  op: typeof readvSync | typeof writevSync,
  fd: number,
  views: Buffer[],
  position: number,
): void {
  while (views.length > 0) {
    let n = op(fd, views, position);
    if (n === 0 && op === readvSync) {
      fail("E_IO", "input ended early: the file changed while it was being read");
    }
    position += n;
    let done = 0;
    while (done < views.length && n >= views[done]!.length) n -= views[done++]!.length;
    views = views.slice(done);
    if (n > 0) views[0] = views[0]!.subarray(n);
  }
}

/** The node:crypto path: one cipher per chunk, fed in PIECE-sized updates, copied into `dst`. */
function jsBatch(
  key: Uint8Array,
  base: Buffer,
  b: Batch,
  inFd: number,
  outFd: number | null,
  bufs: BatchBuffers,
): void {
  const src = bufs.input(b.sealing ? b.ptLen : b.sealedLen);
  readExactSync(inFd, src, b.sealing ? b.ptStart : b.sealedStart);
  // null: verify only
  const dst = b.sealing || outFd !== null ? bufs.output(b.sealing ? b.sealedLen : b.ptLen) : null;
  const nonce = Buffer.alloc(NONCE_SIZE);
  let r = 0;
  let w = 0;
  for (let k = b.first; k < b.end; k++) {
    const n = Math.min(b.cs, b.total - k * b.cs);
    chunkNonce(base, k, nonce);
    if (b.sealing) {
      const c = createCipheriv("aes-256-gcm", key, nonce);
      for (let q = r; q < r + n; q += PIECE) {
        w += c.update(src.subarray(q, Math.min(q + PIECE, r + n))).copy(dst!, w);
      }
      c.final(); // GCM is a stream mode: final() returns no bytes
      w += c.getAuthTag().copy(dst!, w);
      r += n;
    } else {
      const d = createDecipheriv("aes-256-gcm", key, nonce);
      d.setAuthTag(src.subarray(r + n, r + n + TAG_SIZE));
      // Unauthenticated plaintext lands only in `dst` (memory, wiped after the job); the
      // batch is written after every chunk in it passed final().
      for (let q = r; q < r + n; q += PIECE) {
        const pt = d.update(src.subarray(q, Math.min(q + PIECE, r + n)));
        if (dst !== null) w += pt.copy(dst, w);
      }
      try {
        d.final();
      } catch {
        authFailed(k);
      }
      r += n + TAG_SIZE;
    }
  }
  if (outFd !== null) writeAllSync(outFd, dst!, b.sealing ? b.sealedStart : b.ptStart);
}
