/**
 * Splits a payload into contiguous chunk ranges and runs them: on the main thread for small
 * inputs (a worker's start-up costs more than the work), otherwise on up to `workers` pool
 * threads at once. The first failure raises the shared abort flag, every in-flight job is
 * awaited (so nothing still writes to an output that is about to be removed), then it throws.
 */
import { availableParallelism } from "node:os";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { fail } from "../format/errors.js";
import { PayloadGeometry } from "../format/geometry.js";
import { ioError } from "./fsutil.js";
import { type JobOutcome, workerPool } from "./pool.js";
import type { Progress } from "./progress.js";
import { BatchBuffers, processRange, type RangeKeys, type RangeMode } from "./range-job.js";

/** Below this much plaintext the main thread does the work itself. */
export const PARALLEL_THRESHOLD = 4 << 20;
/** Target size of one job: small enough to balance load and to stop soon after an abort. */
const JOB_BYTES = 32 << 20;

export interface RangeRun {
  readonly mode: RangeMode;
  readonly inFd: number;
  readonly outFd: number | null;
  readonly keys: RangeKeys;
  readonly chunkSize: number;
  readonly plaintextLength: number;
  readonly chunksOffset: number;
  readonly workers?: number | undefined;
  readonly progress: Progress;
}

export function defaultWorkers(): number {
  return availableParallelism();
}

/**
 * Starts the worker threads a run of this size will use, before the caller parses headers and
 * unwraps keys: thread start-up (tens of milliseconds) then overlaps that work.
 */
export function prewarmWorkers(
  plaintextLength: number,
  workers: number | undefined,
): Promise<void> {
  const n = workers ?? defaultWorkers();
  if (Number.isSafeInteger(n) && n > 0 && plaintextLength >= PARALLEL_THRESHOLD) {
    return workerPool.prewarm(n);
  }
  return Promise.resolve();
}

export async function runRanges(run: RangeRun): Promise<void> {
  const workers = run.workers ?? defaultWorkers();
  if (!Number.isSafeInteger(workers) || workers < 0) {
    fail("E_USAGE", `workers must be a whole number >= 0, got ${workers}`);
  }
  const chunks = new PayloadGeometry(run.chunkSize).chunkCount(run.plaintextLength);
  if (workers === 0 || run.plaintextLength < PARALLEL_THRESHOLD) {
    return runInline(run, 0, chunks);
  }
  const pieces = Math.min(chunks, Math.max(workers, Math.ceil(run.plaintextLength / JOB_BYTES)));
  const bounds = Array.from({ length: pieces + 1 }, (_, i) => Math.round((chunks * i) / pieces));
  const abort = new Int32Array(new SharedArrayBuffer(4));
  let next = 0;
  let firstError: unknown = null;
  const runner = async () => {
    while (next < pieces && Atomics.load(abort, 0) === 0) {
      const p = next++;
      let outcome: JobOutcome;
      try {
        outcome = await workerPool.run({
          spec: { ...specOf(run), firstChunk: bounds[p]!, endChunk: bounds[p + 1]! },
          inFd: run.inFd,
          outFd: run.outFd,
          aeadKey: run.keys.aeadKey,
          baseNonce: run.keys.baseNonce,
          progress: run.progress.counter,
          abort,
        });
      } catch (e) {
        Atomics.store(abort, 0, 1);
        firstError ??= e;
        return;
      }
      if (outcome === "aborted") return;
    }
  };
  await Promise.all(Array.from({ length: Math.min(workers, pieces) }, runner));
  if (firstError) throw firstError;
  if (Atomics.load(abort, 0) !== 0) fail("E_IO", "parallel job stopped without an error");
}

function specOf(run: RangeRun) {
  return {
    mode: run.mode,
    chunkSize: run.chunkSize,
    plaintextLength: run.plaintextLength,
    chunksOffset: run.chunksOffset,
  };
}

/** Same loop on this thread, yielding to the event loop between batches. */
async function runInline(run: RangeRun, firstChunk: number, endChunk: number): Promise<void> {
  const bufs = new BatchBuffers();
  try {
    const spec = { ...specOf(run), firstChunk, endChunk };
    for (const done of processRange(spec, run.keys, run.inFd, run.outFd, bufs)) {
      run.progress.add(done);
      await yieldToLoop();
    }
  } catch (e) {
    throw ioError("process the payload", e);
  } finally {
    bufs.wipe();
  }
}
