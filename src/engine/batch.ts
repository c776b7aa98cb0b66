/**
 * What the range loop (range-job.ts) hands each batch implementation (batch-native.ts,
 * batch-js.ts): where one batch of chunks lies, the per-thread buffers it may use, and the
 * errors they raise, worded the same on every path.
 */
import { fail } from "../format/errors.js";

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

export function authFailed(k: number): never {
  return fail("E_DECRYPT", `chunk ${k} failed authentication: the file was modified`);
}

export function inputChanged(): never {
  return fail("E_IO", "input ended early: the file changed while it was being read");
}
