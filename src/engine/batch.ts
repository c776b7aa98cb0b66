/**
 * What the range loop (range-job.ts) hands each batch implementation (batch-native.ts,
 * batch-js.ts): where one batch of chunks lies, the per-thread buffers it may use, and the
 * errors they raise, worded the same on every path.
 */
import { fail } from "../format/errors.js";
import { alignedBuffer, DIRECT_ALIGN, EdgeCarry } from "./direct-write.js";

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

/**
 * Aligned output buffers a thread rotates through when writing around the page cache: one is
 * filled (encrypted or opened into) while the writes of the others are in flight on the libuv
 * pool. One thread waiting for each of its direct writes left the disk idle between them.
 */
const DIRECT_BUFFERS = 3;

/** Reusable I/O buffers (one set per thread); grown on demand, never shrunk. */
export class BatchBuffers {
  private a = Buffer.alloc(0);
  private b = Buffer.alloc(0);
  private readonly ring: (Buffer | null)[] = Array(DIRECT_BUFFERS).fill(null);
  /** Per ring buffer: its write in flight, settling to that write's error or null. */
  private readonly pending: (Promise<unknown> | null)[] = Array(DIRECT_BUFFERS).fill(null);
  private turn = 0;
  /** The last direct batch's unaligned tail, written by the next batch or by settle(). */
  readonly carry = new EdgeCarry();
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
   * Aligned memory (direct-write.ts) for `n` bytes placed at any offset below DIRECT_ALIGN: the
   * ring's current buffer, free once `ready()` resolved. `plaintext`: it will hold plaintext
   * (opening), so it is wiped when the job ends.
   */
  aligned(n: number, plaintext: boolean): Buffer {
    if (this.pending[this.turn] !== null) throw new Error("aligned buffer still being written");
    let c = this.ring[this.turn] ?? null;
    if (c === null || c.length < n + DIRECT_ALIGN) c = this.ring[this.turn] = alignedBuffer(n);
    if (plaintext) this.dirtyC = true;
    return c;
  }
  /**
   * Hands the buffer `aligned()` returned last to an asynchronous write: the next `aligned()`
   * returns the ring's next buffer. A failure is kept (no unhandled rejection) and thrown by
   * `ready()` or `settle()`.
   */
  writing(write: Promise<unknown>): void {
    this.pending[this.turn] = write.then(
      () => null,
      (e: unknown) => e ?? new Error("write failed"),
    );
    this.turn = (this.turn + 1) % DIRECT_BUFFERS;
  }
  /** Waits until the buffer `aligned()` returns next is free; throws if its write failed. */
  async ready(): Promise<void> {
    const p = this.pending[this.turn];
    if (!p) return;
    this.pending[this.turn] = null;
    const e = await p;
    if (e) throw e;
  }
  /**
   * Waits for every write in flight and throws the first failure, then writes the edge still
   * carried (through the cache): before a job reports done (the caller fsyncs and renames
   * next) and before its buffers are wiped.
   */
  async settle(): Promise<void> {
    let first: unknown = null;
    for (let i = 0; i < DIRECT_BUFFERS; i++) {
      const p = this.pending[i];
      if (!p) continue;
      this.pending[i] = null;
      first ??= await p;
    }
    if (first) {
      this.carry.clear(); // the job fails: its output is discarded
      throw first;
    }
    this.carry.flush();
  }
  /** The buffers may have held plaintext: clear them when a job ends (after settle()). */
  wipe(): void {
    if (this.dirtyA) this.a.fill(0);
    if (this.dirtyB) this.b.fill(0);
    if (this.dirtyC) for (const c of this.ring) c?.fill(0);
    this.carry.clear();
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
