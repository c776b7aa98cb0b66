/**
 * The payload sealer for streams with the native addon: the same bytes as format/payload.ts's
 * PayloadSealer (same derivation, same chunking: a full chunk is never the final one, finish()
 * seals the short or empty last chunk), but the whole chunks of each input are sealed in one
 * addon call straight from the input into one output buffer, instead of a copy, a cipher object
 * and a concatenation per chunk. The output is handed on a chunk at a time (views of that one
 * buffer, which a writer can join back into one write).
 */

import {
  type ChunkKeys,
  deriveChunkKeys,
  SALT_SIZE,
  TAG_SIZE,
  wipeChunkKeys,
} from "../format/chunked.js";
import { fail } from "../format/errors.js";
import { randomBytes } from "../format/primitives.js";
import { batchAsync, type NativeGcm } from "./native-gcm.js";

/**
 * How many pool threads one input's whole chunks are split across (pushAsync). Two: the machines
 * this is tuned on have two cores, and the JS thread meanwhile reads and writes.
 */
export const ASYNC_SPLIT = 2;

/**
 * Staging buffers for a partial chunk, taken in turn. With pushAsync up to two inputs are in
 * flight (the caller submits the next before awaiting the previous), and a staged chunk is
 * sealed or opened from its buffer on a pool thread while the next partial chunk is copied
 * aside: three buffers keep the one being filled apart from the two that may be in use.
 */
export class StagingRing {
  private readonly bufs: Buffer[] = [];
  private at = 0;
  constructor(private readonly size: number) {
    this.bufs.push(Buffer.allocUnsafeSlow(size));
  }
  get current(): Buffer {
    return this.bufs[this.at]!;
  }
  /** Moves on to the next buffer (allocated on first use). */
  next(): void {
    this.at = (this.at + 1) % 3;
    if (this.bufs.length <= this.at) this.bufs.push(Buffer.allocUnsafeSlow(this.size));
  }
  wipe(): void {
    for (const b of this.bufs) b.fill(0);
  }
}

/** `count` chunks as at most ASYNC_SPLIT runs of consecutive chunks: [first chunk, count][]. */
export function splitChunks(count: number): [number, number][] {
  const parts = Math.min(count, ASYNC_SPLIT);
  const out: [number, number][] = [];
  let first = 0;
  for (let p = 0; p < parts; p++) {
    const n = Math.floor(count / parts) + (p < count % parts ? 1 : 0);
    out.push([first, n]);
    first += n;
  }
  return out;
}

export class NativeStreamSealer {
  private readonly keys: ChunkKeys;
  /** The plaintext of the chunk not yet complete (never a whole chunk between calls). */
  private readonly ring: StagingRing;
  private get staging(): Buffer {
    return this.ring.current;
  }
  private filled = 0;
  private index = 0;
  private done = false;
  readonly prefix: Buffer;

  constructor(
    private readonly gcm: NativeGcm,
    inputKey: Uint8Array,
    context: Uint8Array,
    readonly chunkSize: number,
    salt: Uint8Array = randomBytes(SALT_SIZE),
  ) {
    this.keys = deriveChunkKeys(inputKey, salt, context, chunkSize);
    this.prefix = Buffer.concat([salt, this.keys.commitment]);
    this.ring = new StagingRing(chunkSize);
  }

  /** Where push() puts its output (a caller may hand out buffers it reuses once written). */
  alloc: (length: number) => Buffer = (n) => Buffer.allocUnsafe(n);

  /** Bytes of input that complete the next chunk (a read of this many can release output). */
  get wanted(): number {
    return this.chunkSize - this.filled;
  }

  /**
   * The sealed chunks this input completes, as they arrive (a slow pipe's data moves on without
   * waiting for a batch to fill; a full chunk is never the final one). Whole chunks are sealed
   * straight from the input in one addon call; only a partial chunk is copied aside.
   */
  push(plaintext: Buffer): Buffer[] {
    if (this.done) fail("E_USAGE", "sealer already finished");
    const cs = this.chunkSize;
    const whole = Math.floor((this.filled + plaintext.length) / cs);
    if (whole === 0) {
      plaintext.copy(this.staging, this.filled);
      this.filled += plaintext.length;
      return [];
    }
    const out = this.alloc(whole * (cs + TAG_SIZE));
    let at = 0;
    let sealed = 0;
    if (this.filled > 0) {
      at = cs - this.filled;
      plaintext.copy(this.staging, this.filled, 0, at);
      this.seal(this.staging, 0, 1, cs, out, 0);
      sealed = 1;
    }
    if (whole > sealed) {
      const count = whole - sealed;
      this.seal(plaintext, at, count, count * cs, out, sealed * (cs + TAG_SIZE));
      at += count * cs;
    }
    this.filled = plaintext.copy(this.staging, 0, at);
    return this.chunks(out);
  }

  /**
   * push() with the cipher work on libuv pool threads (the addon's sealBatchAsync), the whole
   * chunks split across ASYNC_SPLIT of them, so the caller reads the next input and writes the
   * previous output meanwhile. The same bytes as push(). Contract: `plaintext` is left alone
   * until the promise settles, at most two pushes are in flight (submit the next, then await
   * the previous), and finish() waits for every push to settle.
   */
  pushAsync(plaintext: Buffer): Promise<Buffer[]> {
    if (this.done) fail("E_USAGE", "sealer already finished");
    const sealAsync = this.gcm.sealBatchAsync;
    if (!sealAsync) return Promise.resolve(this.push(plaintext));
    const cs = this.chunkSize;
    const stride = cs + TAG_SIZE;
    const whole = Math.floor((this.filled + plaintext.length) / cs);
    if (whole === 0) {
      plaintext.copy(this.staging, this.filled);
      this.filled += plaintext.length;
      return Promise.resolve([]);
    }
    const out = this.alloc(whole * stride);
    const work: Promise<number>[] = [];
    const k = this.keys;
    const run = (src: Buffer, from: number, count: number, length: number, outAt: number) => {
      work.push(
        batchAsync(
          sealAsync,
          k.aeadKey,
          k.baseNonce,
          this.index,
          count,
          cs,
          src,
          from,
          length,
          out,
          outAt,
        ),
      );
      this.index += count;
    };
    let at = 0;
    let sealed = 0;
    if (this.filled > 0) {
      at = cs - this.filled;
      plaintext.copy(this.staging, this.filled, 0, at);
      run(this.staging, 0, 1, cs, 0);
      this.ring.next(); // that buffer is in use until the work settles
      sealed = 1;
    }
    for (const [first, count] of splitChunks(whole - sealed)) {
      run(plaintext, at + first * cs, count, count * cs, (sealed + first) * stride);
    }
    at += (whole - sealed) * cs;
    this.filled = plaintext.copy(this.staging, 0, at);
    return Promise.all(work).then(() => this.chunks(out));
  }

  /** Seals what is staged as the short (possibly empty) final chunk; wipes the keys. */
  finish(): Buffer[] {
    if (this.done) fail("E_USAGE", "sealer already finished");
    this.done = true;
    try {
      const out = Buffer.allocUnsafe(this.filled + TAG_SIZE);
      this.seal(this.staging, 0, 1, this.filled, out, 0);
      return [out];
    } finally {
      this.ring.wipe();
      wipeChunkKeys(this.keys);
    }
  }

  /** A sealed batch as one view per chunk, so consumers get chunk-sized writes as before. */
  private chunks(batch: Buffer): Buffer[] {
    const stride = this.chunkSize + TAG_SIZE;
    const views: Buffer[] = [];
    for (let at = 0; at < batch.length; at += stride) views.push(batch.subarray(at, at + stride));
    return views;
  }

  /** `count` chunks of `src` from `from` (`length` bytes in all) into `out` at `outAt`. */
  private seal(
    src: Buffer,
    from: number,
    count: number,
    length: number,
    out: Buffer,
    outAt: number,
  ): void {
    const k = this.keys;
    this.gcm.sealBatch(
      k.aeadKey,
      k.baseNonce,
      this.index,
      count,
      this.chunkSize,
      src,
      from,
      length,
      out,
      outAt,
    );
    this.index += count;
  }
}
