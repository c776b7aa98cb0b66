/**
 * The payload opener for streams with the native addon: the same rules and errors as
 * format/payload.ts's PayloadOpener (commitment checked before any chunk, a full-size sealed
 * chunk is never the final one, finish() opens the short final chunk, which authenticates the
 * length), but sealed input is staged into one reused buffer and opened a batch of chunks per
 * addon call, instead of a cipher object, a copy and a concatenation per chunk.
 *
 * Only authenticated plaintext leaves: a batch is released after every chunk in it verified;
 * when one fails, the batch's output is wiped and nothing of it is released.
 */
import {
  type ChunkKeys,
  checkCommitment,
  deriveChunkKeys,
  KEY_SIZE,
  PAYLOAD_PREFIX_SIZE,
  SALT_SIZE,
  TAG_SIZE,
  wipeChunkKeys,
} from "../format/chunked.js";
import { fail } from "../format/errors.js";
import { authFailed } from "./batch.js";
import type { NativeGcm } from "./native-gcm.js";

/** Chunks per addon call: about 8 MiB of plaintext, as the sealer and the file paths use. */
const BATCH_BYTES = 8 << 20;

export class NativeStreamOpener {
  private keys: ChunkKeys | null = null;
  private readonly inputKey: Buffer;
  private prefix = Buffer.alloc(0);
  private readonly staging: Buffer;
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
    this.staging = Buffer.allocUnsafeSlow(
      Math.max(1, Math.floor(BATCH_BYTES / chunkSize)) * this.sealedChunk,
    );
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
      const out: Buffer[] = [];
      while (at < ciphertext.length) {
        const n = Math.min(ciphertext.length - at, this.staging.length - this.filled);
        ciphertext.copy(this.staging, this.filled, at, at + n);
        this.filled += n;
        at += n;
        // A full staging buffer holds only full-size sealed chunks: none of them is final.
        if (this.filled === this.staging.length) {
          out.push(...this.openStaged(this.filled / this.sealedChunk, this.sealedChunk));
        }
      }
      // Release the whole chunks this input completed rather than wait for a full batch: a
      // slow pipe must see plaintext as it arrives. Big reads still open many chunks per call.
      const whole = Math.floor(this.filled / this.sealedChunk);
      if (whole > 0) out.push(...this.openStaged(whole, this.sealedChunk));
      return out;
    });
  }

  /** Opens what is staged, ending with the short final chunk; wipes the keys. */
  finish(): Buffer[] {
    return this.guard(() => {
      if (this.done) fail("E_USAGE", "payload already finished");
      if (!this.keys) fail("E_TRUNCATED", "payload ends before the salt and commitment");
      const full = Math.floor(this.filled / this.sealedChunk);
      const last = this.filled - full * this.sealedChunk;
      if (last < TAG_SIZE) fail("E_TRUNCATED", "payload is truncated: the final chunk is missing");
      const plaintext = this.openStaged(full + 1, last);
      this.done = true;
      this.wipe();
      return plaintext;
    });
  }

  private openPrefix(prefix: Buffer): ChunkKeys {
    const keys = deriveChunkKeys(
      this.inputKey,
      prefix.subarray(0, SALT_SIZE),
      this.context,
      this.chunkSize,
    );
    this.inputKey.fill(0);
    try {
      checkCommitment(keys, prefix.subarray(SALT_SIZE));
    } catch (e) {
      wipeChunkKeys(keys);
      throw e;
    }
    return keys;
  }

  /** `count` staged chunks, the last `lastSealed` bytes long; one view per chunk. */
  private openStaged(count: number, lastSealed: number): Buffer[] {
    const sealedLength = (count - 1) * this.sealedChunk + lastSealed;
    const plaintext = Buffer.allocUnsafe(sealedLength - count * TAG_SIZE);
    const k = this.keys!;
    const r = this.gcm.openBatch(
      k.aeadKey,
      k.baseNonce,
      this.index,
      count,
      this.chunkSize,
      this.staging,
      0,
      sealedLength,
      plaintext,
      0,
    );
    if (r < 0) {
      plaintext.fill(0); // the chunks before the failing one verified, but none is released
      authFailed(-1 - r);
    }
    this.index += count;
    // Keep the partial chunk that follows for the next input.
    this.staging.copyWithin(0, sealedLength, this.filled);
    this.filled -= sealedLength;
    this.released += plaintext.length;
    const views: Buffer[] = [];
    for (let at = 0; at < plaintext.length; at += this.chunkSize) {
      views.push(plaintext.subarray(at, Math.min(plaintext.length, at + this.chunkSize)));
    }
    return views.length > 0 ? views : [plaintext];
  }

  private wipe(): void {
    this.inputKey.fill(0);
    this.staging.fill(0);
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
