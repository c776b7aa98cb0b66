/**
 * What the range loop (range-job.ts) hands each batch implementation (batch-native.ts,
 * batch-js.ts): where one batch of chunks lies, the per-thread buffers it may use, and the
 * errors they raise, worded the same on every path.
 */
import { fail } from "../format/errors.js";
import { alignedBuffer, DIRECT_ALIGN } from "./direct-write.js";

/** One batch of chunks [first, end) of a `total`-byte message, and where it lies. */
export interface Batch {
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

/** Reusable I/O buffers (one pair per thread); grown on demand, never shrunk. */
export class BatchBuffers {
  private a = Buffer.alloc(0);
  private b = Buffer.alloc(0);
  private c: Buffer | null = null;
  private dirtyA = false;
  private dirtyB = false;
  private dirtyC = false;
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
  /**
   * Aligned memory (direct-write.ts) for `n` bytes placed at any offset below DIRECT_ALIGN;
   * `plaintext`: it will hold plaintext (opening), so it is wiped when the job ends.
   */
  aligned(n: number, plaintext: boolean): Buffer {
    if (this.c === null || this.c.length < n + DIRECT_ALIGN) this.c = alignedBuffer(n);
    if (plaintext) this.dirtyC = true;
    return this.c;
  }
  /** The buffers may have held plaintext: clear them when a job ends. */
  wipe(): void {
    if (this.dirtyA) this.a.fill(0);
    if (this.dirtyB) this.b.fill(0);
    if (this.dirtyC) this.c?.fill(0);
    this.dirtyA = false;
    this.dirtyB = false;
    this.dirtyC = false;
  }
}

export function authFailed(k: number): never {
  return fail("E_DECRYPT", `chunk ${k} failed authentication: the file was modified`);
}

export function inputChanged(): never {
  return fail("E_IO", "input ended early: the file changed while it was being read");
}
