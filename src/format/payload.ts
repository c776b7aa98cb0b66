/**
 * Push-based streaming sealer and opener for the payload (spec/FORMAT.md §4). Both are state
 * machines that remember their first error: after a failure every call fails the same way.
 */

import {
  type ChunkKeys,
  deriveChunkKeys,
  KEY_SIZE,
  keysForPrefix,
  openChunk,
  PAYLOAD_PREFIX_SIZE,
  SALT_SIZE,
  sealChunk,
  TAG_SIZE,
  wipeChunkKeys,
} from "./chunked.js";
import { fail } from "./errors.js";
import { randomBytes } from "./primitives.js";

/** The chunked-encryption context: a fixed label, then the canonical descriptor bytes. */
export function payloadContext(descriptorBytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from("tensorseal.dev/v1 descriptor\0", "ascii"), descriptorBytes]);
}

/** FIFO of byte buffers that hands out exact-length slices without quadratic copying. */
class ByteQueue {
  private parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    if (b.length === 0) return;
    this.parts.push(b);
    this.length += b.length;
  }
  take(n: number): Buffer {
    const first = this.parts[0];
    if (first && first.length >= n) {
      this.parts[0] = first.subarray(n);
      if (this.parts[0].length === 0) this.parts.shift();
      this.length -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const p = this.parts[0]!;
      const k = Math.min(p.length, n - filled);
      p.copy(out, filled, 0, k);
      filled += k;
      if (k === p.length) this.parts.shift();
      else this.parts[0] = p.subarray(k);
    }
    this.length -= n;
    return out;
  }
}

export class PayloadSealer {
  private readonly keys: ChunkKeys;
  private readonly queue = new ByteQueue();
  private index = 0;
  private done = false;
  readonly prefix: Buffer;

  /** `salt` is injectable for deterministic test vectors only; it must never repeat per key. */
  constructor(
    inputKey: Uint8Array,
    context: Uint8Array,
    readonly chunkSize: number,
    salt: Uint8Array = randomBytes(SALT_SIZE),
  ) {
    this.keys = deriveChunkKeys(inputKey, salt, context, chunkSize);
    this.prefix = Buffer.concat([salt, this.keys.commitment]);
  }

  /** Returns the sealed chunks completed by this input (a full chunk is never the final one). */
  push(plaintext: Buffer): Buffer[] {
    if (this.done) fail("E_USAGE", "sealer already finished");
    this.queue.push(plaintext);
    const out: Buffer[] = [];
    while (this.queue.length >= this.chunkSize) {
      out.push(sealChunk(this.keys, this.index++, this.queue.take(this.chunkSize)));
    }
    return out;
  }

  /** Seals the final short (possibly empty) chunk and wipes the keys. */
  finish(): Buffer {
    if (this.done) fail("E_USAGE", "sealer already finished");
    this.done = true;
    const last = sealChunk(this.keys, this.index, this.queue.take(this.queue.length));
    wipeChunkKeys(this.keys);
    return last;
  }
}

export class PayloadOpener {
  private keys: ChunkKeys | null = null;
  private readonly queue = new ByteQueue();
  private index = 0;
  private error: unknown = null;
  private done = false;
  /** Plaintext bytes released so far. */
  released = 0;

  private readonly inputKey: Buffer;

  /** Keeps its own copy of the input key (wiped once the chunk keys are derived). */
  constructor(
    inputKey: Uint8Array,
    private readonly context: Uint8Array,
    readonly chunkSize: number,
  ) {
    if (inputKey.length !== KEY_SIZE)
      fail("E_KEY", `payload key must be ${KEY_SIZE} bytes, got ${inputKey.length}`);
    this.inputKey = Buffer.from(inputKey);
  }

  /** Returns authenticated plaintext; only whole non-final chunks are released before finish. */
  push(ciphertext: Buffer): Buffer[] {
    return this.guard(() => {
      if (this.done) fail("E_TRAILING", "data after the end of the payload");
      this.queue.push(ciphertext);
      const out: Buffer[] = [];
      if (!this.keys) {
        if (this.queue.length < PAYLOAD_PREFIX_SIZE) return out;
        this.keys = this.openPrefix(this.queue.take(PAYLOAD_PREFIX_SIZE));
      }
      const sealed = this.chunkSize + TAG_SIZE;
      // A sealed chunk of full size is never final: the final chunk is always shorter.
      while (this.queue.length >= sealed) out.push(this.open(this.queue.take(sealed)));
      return out;
    });
  }

  /** Authenticates the final chunk, which also authenticates the message length. */
  finish(): Buffer {
    return this.guard(() => {
      if (this.done) fail("E_USAGE", "payload already finished");
      if (!this.keys) fail("E_TRUNCATED", "payload ends before the salt and commitment");
      if (this.queue.length < TAG_SIZE) {
        fail("E_TRUNCATED", "payload is truncated: the final chunk is missing");
      }
      const last = this.open(this.queue.take(this.queue.length));
      this.done = true;
      wipeChunkKeys(this.keys);
      return last;
    });
  }

  private openPrefix(prefix: Buffer): ChunkKeys {
    return keysForPrefix(this.inputKey, prefix, this.context, this.chunkSize);
  }

  private open(sealed: Buffer): Buffer {
    const pt = openChunk(this.keys!, this.index++, sealed);
    this.released += pt.length;
    return pt;
  }

  private guard<T>(fn: () => T): T {
    if (this.error) throw this.error;
    try {
      return fn();
    } catch (e) {
      this.error = e;
      this.inputKey.fill(0);
      if (this.keys) wipeChunkKeys(this.keys);
      throw e;
    }
  }
}
