/**
 * The payload opener for streams with the native addon: the same rules and errors as
 * format/payload.ts's PayloadOpener (commitment checked before any chunk, a full-size sealed
 * chunk is never the final one, finish() opens the short final chunk, which authenticates the
 * length), but the whole chunks of each input are opened in one addon call straight from the input,
 * instead of a cipher object, a copy and a concatenation per chunk; only a partial chunk is
 * copied aside.
 *
 * Only authenticated plaintext leaves: an input's chunks are released after every one of them
 * verified; when one fails, that output is wiped and nothing of it is released.
 */
import {
  type ChunkKeys,
  KEY_SIZE,
  keysForPrefix,
  PAYLOAD_PREFIX_SIZE,
  TAG_SIZE,
  wipeChunkKeys,
} from "../format/chunked.js";
import { fail } from "../format/errors.js";
import { authFailed } from "./batch.js";
import { batchAsync, type NativeGcm } from "./native-gcm.js";
import { StagingRing, splitChunks } from "./stream-sealer.js";

export class NativeStreamOpener {
  private keys: ChunkKeys | null = null;
  private readonly inputKey: Buffer;
  private prefix = Buffer.alloc(0);
  private readonly ring: StagingRing;
  private get staging(): Buffer {
    return this.ring.current;
  }
  private readonly sealedChunk: number;
  private filled = 0;
  private index = 0;
  private error: unknown = null;
  private done = false;
  /** Plaintext bytes released so far. */
  released = 0;

  /** Keeps its own copy of the input key (wiped once the chunk keys are derived). */
  constructor(
    private readonly gcm: NativeGcm,
    inputKey: Uint8Array,
    private readonly context: Uint8Array,
    readonly chunkSize: number,
  ) {
    if (inputKey.length !== KEY_SIZE)
      fail("E_KEY", `payload key must be ${KEY_SIZE} bytes, got ${inputKey.length}`);
    this.inputKey = Buffer.from(inputKey);
    this.sealedChunk = chunkSize + TAG_SIZE;
    this.ring = new StagingRing(this.sealedChunk);
  }

  /** Where push() puts its output (a caller may hand out buffers it reuses once written). */
  alloc: (length: number) => Buffer = (n) => Buffer.allocUnsafe(n);

  /** Bytes of input that complete the next chunk (a read of this many can release output). */
  get wanted(): number {
    if (!this.keys) return PAYLOAD_PREFIX_SIZE - this.prefix.length + this.sealedChunk;
    return this.sealedChunk - this.filled;
  }

  /** Authenticated plaintext of the full chunks this input completes (never the final one). */
  push(ciphertext: Buffer): Buffer[] {
    return this.guard(() => {
      if (this.done) fail("E_TRAILING", "data after the end of the payload");
      let at = 0;
      if (!this.keys) {
        at = Math.min(ciphertext.length, PAYLOAD_PREFIX_SIZE - this.prefix.length);
        this.prefix = Buffer.concat([this.prefix, ciphertext.subarray(0, at)]);
        if (this.prefix.length < PAYLOAD_PREFIX_SIZE) return [];
        this.keys = this.openPrefix(this.prefix);
      }
      const sc = this.sealedChunk;
      const rest = ciphertext.length - at;
      const whole = Math.floor((this.filled + rest) / sc);
      if (whole === 0) {
        this.filled += ciphertext.copy(this.staging, this.filled, at);
        return [];
      }
      // Whole chunks are opened as they arrive (a slow pipe must see plaintext as it comes),
      // straight from the input in one addon call; only a partial chunk is copied aside.
      const plaintext = this.alloc(whole * this.chunkSize);
      let opened = 0;
      if (this.filled > 0) {
        const need = sc - this.filled;
        ciphertext.copy(this.staging, this.filled, at, at + need);
        at += need;
        this.open(this.staging, 0, 1, sc, plaintext, 0);
        opened = 1;
      }
      if (whole > opened) {
        const count = whole - opened;
        this.open(ciphertext, at, count, count * sc, plaintext, opened * this.chunkSize);
        at += count * sc;
      }
      this.filled = ciphertext.copy(this.staging, 0, at);
      return this.release(plaintext);
    });
  }

  /**
   * push() with the cipher work on libuv pool threads (the addon's openBatchAsync), the whole
   * chunks split across ASYNC_SPLIT of them, so the caller reads and writes meanwhile. The same
   * plaintext and errors as push(): nothing of an input is released unless all of its chunks
   * authenticated (a failing input's output is wiped), and after a failure the opener refuses
   * everything. Contract as NativeStreamSealer.pushAsync: `ciphertext` is left alone until the
   * promise settles, at most two pushes are in flight, finish() only after they settled.
   */
  pushAsync(ciphertext: Buffer): Promise<Buffer[]> {
    const openAsync = this.gcm.openBatchAsync;
    if (!openAsync) return new Promise((resolve) => resolve(this.push(ciphertext)));
    let plaintext: Buffer | null = null;
    const work: Promise<number>[] = [];
    try {
      this.guard(() => {
        if (this.done) fail("E_TRAILING", "data after the end of the payload");
        let at = 0;
        if (!this.keys) {
          at = Math.min(ciphertext.length, PAYLOAD_PREFIX_SIZE - this.prefix.length);
          this.prefix = Buffer.concat([this.prefix, ciphertext.subarray(0, at)]);
          if (this.prefix.length < PAYLOAD_PREFIX_SIZE) return;
          this.keys = this.openPrefix(this.prefix);
        }
        const sc = this.sealedChunk;
        const cs = this.chunkSize;
        const whole = Math.floor((this.filled + ciphertext.length - at) / sc);
        if (whole === 0) {
          this.filled += ciphertext.copy(this.staging, this.filled, at);
          return;
        }
        const out = this.alloc(whole * cs);
        plaintext = out;
        const k = this.keys;
        const run = (src: Buffer, from: number, count: number, outAt: number) => {
          work.push(
            batchAsync(
              openAsync,
              k.aeadKey,
              k.baseNonce,
              this.index,
              count,
              cs,
              src,
              from,
              count * sc,
              out,
              outAt,
            ),
          );
          this.index += count;
        };
        let opened = 0;
        if (this.filled > 0) {
          const need = sc - this.filled;
          ciphertext.copy(this.staging, this.filled, at, at + need);
          at += need;
          run(this.staging, 0, 1, 0);
          this.ring.next(); // that buffer is in use until the work settles
          opened = 1;
        }
        for (const [first, count] of splitChunks(whole - opened)) {
          run(ciphertext, at + first * sc, count, (opened + first) * cs);
        }
        at += (whole - opened) * sc;
        this.filled = ciphertext.copy(this.staging, 0, at);
        this.released += out.length;
      });
    } catch (e) {
      return Promise.reject(e);
    }
    const out = plaintext as Buffer | null;
    if (out === null) return Promise.resolve([]);
    const failed = (e: unknown): never => {
      out.fill(0);
      this.error ??= e;
      this.wipe();
      throw this.error;
    };
    return Promise.all(work).then((results) => {
      // The first chunk that failed: results are -1-k, so the largest negative one.
      const bad = results.filter((r) => r < 0);
      if (bad.length > 0) {
        try {
          authFailed(-1 - Math.max(...bad));
        } catch (e) {
          failed(e);
        }
      }
      return this.views(out);
    }, failed);
  }

  /** Opens what is staged, ending with the short final chunk; wipes the keys. */
  finish(): Buffer[] {
    return this.guard(() => {
      if (this.done) fail("E_USAGE", "payload already finished");
      if (!this.keys) fail("E_TRUNCATED", "payload ends before the salt and commitment");
      const last = this.filled; // less than a sealed chunk: push() opened every whole one
      if (last < TAG_SIZE) fail("E_TRUNCATED", "payload is truncated: the final chunk is missing");
      const plaintext = Buffer.allocUnsafe(last - TAG_SIZE);
      this.open(this.staging, 0, 1, last, plaintext, 0);
      this.done = true;
      this.wipe();
      return this.release(plaintext);
    });
  }

  private openPrefix(prefix: Buffer): ChunkKeys {
    try {
      return keysForPrefix(this.inputKey, prefix, this.context, this.chunkSize);
    } finally {
      this.inputKey.fill(0);
    }
  }

  /**
   * `count` sealed chunks of `src` from `from` (`length` bytes) into `out` at `outAt`. When one
   * fails, all of `out` is wiped (chunks opened before it in this input are not released either).
   */
  private open(
    src: Buffer,
    from: number,
    count: number,
    length: number,
    out: Buffer,
    outAt: number,
  ): void {
    const k = this.keys!;
    const r = this.gcm.openBatch(
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
    if (r < 0) {
      out.fill(0);
      authFailed(-1 - r);
    }
    this.index += count;
  }

  /** Authenticated plaintext, one view per chunk. */
  private release(plaintext: Buffer): Buffer[] {
    this.released += plaintext.length;
    return this.views(plaintext);
  }

  private views(plaintext: Buffer): Buffer[] {
    const views: Buffer[] = [];
    for (let at = 0; at < plaintext.length; at += this.chunkSize) {
      views.push(plaintext.subarray(at, Math.min(plaintext.length, at + this.chunkSize)));
    }
    return views.length > 0 ? views : [plaintext];
  }

  private wipe(): void {
    this.inputKey.fill(0);
    this.ring.wipe();
    if (this.keys) wipeChunkKeys(this.keys);
  }

  private guard<T>(fn: () => T): T {
    if (this.error) throw this.error;
    try {
      return fn();
    } catch (e) {
      this.error = e;
      this.wipe();
      throw e;
    }
  }
}
