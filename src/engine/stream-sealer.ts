/**
 * The payload sealer for streams with the native addon: the same bytes as format/payload.ts's
 * PayloadSealer (same derivation, same chunking: a full chunk is never the final one, finish()
 * seals the short or empty last chunk), but the whole chunks of each input are sealed in one
 * addon call straight from the input into one output buffer, instead of a copy, a cipher object
 * and a concatenation per chunk. The output is handed on a chunk at a time (views of that one
 * buffer, which a writer can join back into one write).
 */
import { randomBytes } from "node:crypto";
import {
  type ChunkKeys,
  deriveChunkKeys,
  SALT_SIZE,
  TAG_SIZE,
  wipeChunkKeys,
} from "../format/chunked.js";
import { fail } from "../format/errors.js";
import type { NativeGcm } from "./native-gcm.js";

export class NativeStreamSealer {
  private readonly keys: ChunkKeys;
  /** The plaintext of the chunk not yet complete (never a whole chunk between calls). */
  private readonly staging: Buffer;
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
    this.staging = Buffer.allocUnsafeSlow(chunkSize);
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

  /** Seals what is staged as the short (possibly empty) final chunk; wipes the keys. */
  finish(): Buffer[] {
    if (this.done) fail("E_USAGE", "sealer already finished");
    this.done = true;
    try {
      const out = Buffer.allocUnsafe(this.filled + TAG_SIZE);
      this.seal(this.staging, 0, 1, this.filled, out, 0);
      return [out];
    } finally {
      this.staging.fill(0);
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
