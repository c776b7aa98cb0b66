/**
 * The payload sealer for streams with the native addon: the same bytes as format/payload.ts's
 * PayloadSealer (same derivation, same chunking: a full chunk is never the final one, finish()
 * seals the short or empty last chunk), but input is staged into one reused buffer and sealed a
 * batch of chunks per addon call into one output buffer, instead of a copy, a cipher object and
 * a concatenation per chunk. The output is still handed on a chunk at a time (views).
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

/** Chunks per addon call: about 8 MiB of plaintext, as the file paths use. */
const BATCH_BYTES = 8 << 20;

export class NativeStreamSealer {
  private readonly keys: ChunkKeys;
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
    this.staging = Buffer.allocUnsafeSlow(
      Math.max(1, Math.floor(BATCH_BYTES / chunkSize)) * chunkSize,
    );
  }

  /** The sealed batches this input completes (a full staging buffer is never the final chunk). */
  push(plaintext: Buffer): Buffer[] {
    if (this.done) fail("E_USAGE", "sealer already finished");
    const out: Buffer[] = [];
    let at = 0;
    while (at < plaintext.length) {
      const n = Math.min(plaintext.length - at, this.staging.length - this.filled);
      plaintext.copy(this.staging, this.filled, at, at + n);
      this.filled += n;
      at += n;
      if (this.filled === this.staging.length)
        out.push(...this.chunks(this.seal(this.filled / this.chunkSize, 0)));
    }
    // Hand on the whole chunks this input completed rather than wait for a full batch, so a
    // slow pipe's data moves on as it arrives; big reads still seal many chunks per call.
    const whole = Math.floor(this.filled / this.chunkSize);
    if (whole > 0) out.push(...this.chunks(this.seal(whole, 0)));
    return out;
  }

  /** Seals what is staged, ending with the short (possibly empty) final chunk; wipes the keys. */
  finish(): Buffer[] {
    if (this.done) fail("E_USAGE", "sealer already finished");
    this.done = true;
    try {
      const full = Math.floor(this.filled / this.chunkSize);
      return this.chunks(this.seal(full + 1, this.filled - full * this.chunkSize));
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

  /** `count` chunks from the staging buffer, the last one `last` bytes when it is the final. */
  private seal(count: number, last: number): Buffer {
    const length = (this.done ? count - 1 : count) * this.chunkSize + (this.done ? last : 0);
    const out = Buffer.allocUnsafe(length + count * TAG_SIZE);
    const k = this.keys;
    this.gcm.sealBatch(
      k.aeadKey,
      k.baseNonce,
      this.index,
      count,
      this.chunkSize,
      this.staging,
      0,
      length,
      out,
      0,
    );
    this.index += count;
    // Keep the partial chunk that follows for the next input.
    this.staging.copyWithin(0, length, this.filled);
    this.filled -= length;
    return out;
  }
}
