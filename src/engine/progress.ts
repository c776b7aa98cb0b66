/**
 * Progress reporting: jobs add plaintext bytes to a shared counter (workers via Atomics); a
 * timer reports it to the callback at most four times a second, plus once at the end.
 */
const INTERVAL_MS = 250;

/** Plaintext bytes done so far and in all; `total` is 0 while a stream's length is unknown. */
export type ProgressCallback = (done: number, total: number) => void;

export class Progress {
  readonly counter = new BigInt64Array(new SharedArrayBuffer(8));
  private timer: NodeJS.Timeout | null = null;
  private last = -1;

  constructor(
    private readonly total: number,
    private readonly callback?: ProgressCallback,
  ) {
    if (callback) {
      this.timer = setInterval(() => this.report(), INTERVAL_MS);
      this.timer.unref();
    }
  }

  add(n: number): void {
    Atomics.add(this.counter, 0, BigInt(n));
  }

  get done(): number {
    return Number(Atomics.load(this.counter, 0));
  }

  /** Stops the timer; on success reports completion once. */
  stop(success: boolean): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (success && this.callback) this.callback(this.total, this.total);
  }

  private report(): void {
    const done = this.done;
    if (done === this.last) return;
    this.last = done;
    this.callback?.(done, this.total);
  }
}
