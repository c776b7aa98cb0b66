/**
 * One batch through the native addon (native-gcm.ts): no per-chunk allocation, the cipher works
 * straight between the caller's buffers. Two ways in: a mapping of the input (sealing and
 * verifying a regular file: no pread copy) or one pread/readv into the thread's batch buffer.
 */
import { readvSync, writevSync } from "node:fs";
import { TAG_SIZE } from "../format/chunked.js";
import { authFailed, type Batch, type BatchBuffers, inputChanged } from "./batch.js";
import { DIRECT_ALIGN, writeDirectAsync } from "./direct-write.js";
import { readExactSync, writeAllSync } from "./fsutil.js";
import type { NativeGcm } from "./native-gcm.js";
import type { RangeSink } from "./sink.js";

/**
 * Whether this thread still writes around the page cache: off for good once a file system
 * refused an aligned O_DIRECT write (the bytes then went through the cache).
 */
const direct = { on: true };

/**
 * The batch's write goes on while the thread does its next batch (into the ring's other buffer);
 * the range loop's caller waits for it (BatchBuffers.ready/settle) before reusing the buffer and
 * before the job reports done.
 */
function writeBehind(bufs: BatchBuffers, write: Promise<boolean>): void {
  bufs.writing(
    write.then((ok) => {
      if (!ok) direct.on = false;
    }),
  );
}

/** A job's input range, mapped: `view[i]` is the input file's byte `start + i`. */
export interface MappedInput {
  readonly buffer: ArrayBuffer;
  readonly view: Uint8Array;
  readonly start: number;
}

/**
 * Straight from the mapping (only ever sealing or verifying: see range-job.ts): sealing
 * encrypts into the output buffer (ciphertext only) and writes it; verifying decrypts into the
 * addon's scratch memory and discards it.
 */
export function mappedBatch(
  gcm: NativeGcm,
  key: Uint8Array,
  base: Buffer,
  b: Batch,
  m: MappedInput,
  sink: RangeSink,
  bufs: BatchBuffers,
): void {
  const count = b.end - b.first;
  let r: number;
  try {
    if (b.sealing) {
      if (sink.kind === "fd" && sink.directFd !== undefined && direct.on) {
        // Placed at the file offset's remainder, so its aligned middle can go around the cache.
        const out = bufs.aligned(b.sealedLen, false);
        const at = b.sealedStart % DIRECT_ALIGN;
        gcm.sealBatch(
          key,
          base,
          b.first,
          count,
          b.cs,
          m.view,
          b.ptStart - m.start,
          b.ptLen,
          out,
          at,
        );
        writeBehind(
          bufs,
          writeDirectAsync(sink.fd, sink.directFd, out, at, b.sealedLen, b.sealedStart, bufs.carry),
        );
        return;
      }
      const out = bufs.sealedOutput(b.sealedLen);
      gcm.sealBatch(key, base, b.first, count, b.cs, m.view, b.ptStart - m.start, b.ptLen, out, 0);
      if (sink.kind === "fd") writeAllSync(sink.fd, out, b.sealedStart);
      return;
    }
    const at = b.sealedStart - m.start;
    r = gcm.openBatch(key, base, b.first, count, b.cs, m.view, at, b.sealedLen, null, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException)?.code === "ERR_TSEAL_INPUT_CHANGED") inputChanged();
    throw e;
  }
  if (r < 0) authFailed(-1 - r);
}

/**
 * In one buffer laid out as the sealed batch: sealing reads each chunk's plaintext straight into
 * its slot (readv) and fills in the tags in place. Opening depends on the sink:
 * - fd: each chunk decrypts onto itself and, once all of them authenticated, the plaintext
 *   slots are written (writev);
 * - memory: each chunk decrypts into its slot of the caller's buffer (openBatch wipes a chunk
 *   that fails there);
 * - discard: decrypts into the addon's scratch memory and leaves the buffer alone.
 */
export function nativeBatch(
  gcm: NativeGcm,
  key: Uint8Array,
  base: Buffer,
  b: Batch,
  inFd: number,
  sink: RangeSink,
  bufs: BatchBuffers,
): void {
  const count = b.end - b.first;
  const buf = bufs.input(b.sealedLen);
  if (b.sealing) {
    vectoredSync(readvSync, inFd, plaintextSlots(buf, b), b.ptStart);
    gcm.sealInPlace(key, base, b.first, count, b.cs, buf, 0, b.sealedLen);
    if (sink.kind === "fd") writeAllSync(sink.fd, buf, b.sealedStart);
    return;
  }
  readExactSync(inFd, buf, b.sealedStart);
  let r: number;
  if (sink.kind === "fd" && sink.directFd !== undefined && direct.on) {
    // Opened into aligned memory at the plaintext offset's remainder; written only once every
    // chunk of the batch authenticated (openBatch wipes a failing chunk; the job end wipes all).
    const out = bufs.aligned(b.ptLen, true);
    const at = b.ptStart % DIRECT_ALIGN;
    r = gcm.openBatch(key, base, b.first, count, b.cs, buf, 0, b.sealedLen, out, at);
    if (r < 0) authFailed(-1 - r);
    writeBehind(
      bufs,
      writeDirectAsync(sink.fd, sink.directFd, out, at, b.ptLen, b.ptStart, bufs.carry),
    );
    return;
  }
  if (sink.kind === "fd") {
    r = gcm.openInPlace(key, base, b.first, count, b.cs, buf, 0, b.sealedLen);
  } else {
    const out = sink.kind === "memory" ? new Uint8Array(sink.buffer) : null;
    r = gcm.openBatch(key, base, b.first, count, b.cs, buf, 0, b.sealedLen, out, b.ptStart);
  }
  if (r < 0) authFailed(-1 - r);
  if (sink.kind === "fd") vectoredSync(writevSync, sink.fd, plaintextSlots(buf, b), b.ptStart);
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
    if (n === 0 && op === readvSync) inputChanged();
    position += n;
    let done = 0;
    while (done < views.length && n >= views[done]!.length) n -= views[done++]!.length;
    views = views.slice(done);
    if (n > 0) views[0] = views[0]!.subarray(n);
  }
}
