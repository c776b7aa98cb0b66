/**
 * Splits a payload into contiguous chunk ranges and runs them: on the main thread for small
 * inputs (a worker's start-up costs more than the work), otherwise as pieces that up to
 * `workers` pool threads take in turn, and the main thread too where the caller asks
 * (openToMemory, whose caller waits for the whole buffer anyway). The first failure raises the
 * shared abort flag, every in-flight job is awaited (so nothing still writes to an output that
 * is about to be removed or wiped), then it throws.
 */
import { availableParallelism } from "node:os";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { fail } from "../format/errors.js";
import { PayloadGeometry } from "../format/geometry.js";
import { BatchBuffers } from "./batch.js";
import { ioError } from "./fsutil.js";
import { type JobOutcome, workerPool } from "./pool.js";
import type { Progress } from "./progress.js";
import { processRange, type RangeKeys, type RangeMode, type RangeSpec } from "./range-job.js";
import { isShareable, type RangeSink } from "./sink.js";

/** Below this much plaintext the main thread does the work itself. */
export const PARALLEL_THRESHOLD = 4 << 20;
/**
 * The smallest job: the last pieces of a run are this size, so the threads finish within about
 * one such job of each other. Earlier pieces are larger (nextPiece): every job ends by waiting
 * for its writes still in flight and, on a worker, for the main thread to post the next one.
 * A job maps its input a batch at a time, so its size does not raise the RSS.
 */
const JOB_BYTES = 8 << 20;

/**
 * Guided self-scheduling: each piece takes 1/(2 x threads) of the chunks still unclaimed, never
 * fewer than a job's worth (or than an even split of the whole, for runs under threads jobs).
 * 1 GiB on 2 threads is 16 pieces (256 MiB first, 8 MiB last) instead of 128 of 8 MiB: with
 * direct writes each 8 MiB job ended by draining its writes in flight, and a worker then waited
 * for the main thread to hand it the next job between two batches of its own (a 1 GiB open:
 * ~40% of the worker's time; docs/BENCHMARKS.md, 2026-12-05 files).
 */
export function nextPiece(
  claimed: number,
  chunks: number,
  threads: number,
  chunkSize: number,
): number {
  const remaining = chunks - claimed;
  if (remaining <= 0) return 0;
  const jobChunks = Math.max(1, Math.floor(JOB_BYTES / chunkSize));
  const least = Math.max(1, Math.min(jobChunks, Math.ceil(chunks / threads)));
  return Math.min(remaining, Math.max(least, Math.ceil(remaining / (2 * threads))));
}

export interface RangeRun {
  readonly mode: RangeMode;
  readonly inFd: number;
  /** Memory is written by several threads only if it is a SharedArrayBuffer (runsInParallel). */
  readonly sink: RangeSink;
  readonly keys: RangeKeys;
  readonly chunkSize: number;
  readonly plaintextLength: number;
  readonly chunksOffset: number;
  /** "reseal": offset of sealed chunk 0 in the output. */
  readonly outChunksOffset?: number;
  /** Pool threads; 0 = main thread only. Default availableParallelism(). */
  readonly workers?: number | undefined;
  /**
   * The main thread takes pieces as well, yielding to its event loop between batches (so pool
   * replies are still handled and the next pieces handed out). Off for files: there the main
   * thread stays free for the caller's other work.
   */
  readonly mainThreadJoins?: boolean;
  readonly progress: Progress;
}

export function defaultWorkers(): number {
  return availableParallelism();
}

/**
 * The threads of a file operation: the caller's `workers` pool threads as asked, or by default
 * one pool thread fewer than cores with the main thread taking pieces too. A worker costs its
 * start-up (30-50 ms of CPU) and 15-20 MiB of RSS; the main thread of a CLI only waited for
 * them (256 MiB sealed file -> file: 105 MiB peak with two workers, 80 MiB with one).
 */
export function fileThreads(
  workers: number | undefined,
  /** The plaintext's length, or more (a sealed file's size). */
  plaintextBound: number,
): {
  workers: number;
  mainThreadJoins: boolean;
} {
  if (workers !== undefined) return { workers, mainThreadJoins: false };
  // Below PARALLEL_THRESHOLD the run stays on the main thread whatever the cores
  // (runsInParallel): no need to load node:os to count them (issue 11: start-up).
  if (plaintextBound < PARALLEL_THRESHOLD) return { workers: 0, mainThreadJoins: false };
  const cores = defaultWorkers();
  return { workers: Math.max(0, cores - 1), mainThreadJoins: cores > 1 };
}

/** Whether runRanges hands this run to pool threads (a memory sink must then be shared). */
export function runsInParallel(plaintextLength: number, workers: number): boolean {
  return workers > 0 && plaintextLength >= PARALLEL_THRESHOLD;
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
  if (Number.isSafeInteger(n) && runsInParallel(plaintextLength, n)) return workerPool.prewarm(n);
  return Promise.resolve();
}

export async function runRanges(run: RangeRun): Promise<void> {
  const workers = run.workers ?? defaultWorkers();
  if (!Number.isSafeInteger(workers) || workers < 0) {
    fail("E_USAGE", `workers must be a whole number >= 0, got ${workers}`);
  }
  const chunks = new PayloadGeometry(run.chunkSize).chunkCount(run.plaintextLength);
  if (!runsInParallel(run.plaintextLength, workers)) {
    const bufs = new BatchBuffers();
    try {
      await runHere(run, { ...specOf(run), firstChunk: 0, endChunk: chunks }, bufs, null);
      return;
    } finally {
      bufs.wipe();
    }
  }
  const sink = run.sink;
  if (!isShareable(sink)) throw new TypeError("a parallel run into memory needs shared memory");
  const threads = workers + (run.mainThreadJoins ? 1 : 0);
  const abort = new Int32Array(new SharedArrayBuffer(4));
  let claimed = 0;
  let firstError: unknown = null;
  const runner = async (job: (spec: RangeSpec) => Promise<JobOutcome>) => {
    while (claimed < chunks && Atomics.load(abort, 0) === 0) {
      const firstChunk = claimed;
      claimed += nextPiece(claimed, chunks, threads, run.chunkSize);
      let outcome: JobOutcome;
      try {
        outcome = await job({ ...specOf(run), firstChunk, endChunk: claimed });
      } catch (e) {
        Atomics.store(abort, 0, 1);
        firstError ??= e;
        return;
      }
      if (outcome === "aborted") return;
    }
  };
  const inPool = (spec: RangeSpec) =>
    workerPool.run({
      spec,
      inFd: run.inFd,
      sink,
      aeadKey: run.keys.aeadKey,
      baseNonce: run.keys.baseNonce,
      ...(run.keys.resealKeys && { resealKeys: run.keys.resealKeys }),
      progress: run.progress.counter,
      abort,
    });
  // Pool runners first: their jobs are posted before the main thread starts computing.
  const runners = Array.from({ length: Math.min(workers, chunks) }, () => runner(inPool));
  if (run.mainThreadJoins) {
    const bufs = new BatchBuffers();
    runners.push(runner((spec) => runHere(run, spec, bufs, abort)).finally(() => bufs.wipe()));
  }
  await Promise.all(runners);
  if (firstError) throw firstError;
  if (Atomics.load(abort, 0) !== 0) fail("E_IO", "parallel job stopped without an error");
}

function specOf(run: RangeRun) {
  return {
    mode: run.mode,
    chunkSize: run.chunkSize,
    plaintextLength: run.plaintextLength,
    chunksOffset: run.chunksOffset,
    ...(run.outChunksOffset !== undefined && { outChunksOffset: run.outChunksOffset }),
  };
}

/** One range on this thread, yielding to the event loop between batches. */
async function runHere(
  run: RangeRun,
  spec: RangeSpec,
  bufs: BatchBuffers,
  abort: Int32Array | null,
): Promise<JobOutcome> {
  try {
    for (const done of processRange(spec, run.keys, run.inFd, run.sink, bufs)) {
      run.progress.add(done);
      if (abort !== null && Atomics.load(abort, 0) !== 0) return "aborted";
      await bufs.ready(); // the buffer the next batch fills: its earlier write is done
      await yieldToLoop();
    }
    await bufs.settle(); // on the file before the caller fsyncs
    return "done";
  } catch (e) {
    throw ioError("process the payload", e);
  } finally {
    // Nothing may still write from these buffers once the job returned (or while they are wiped).
    await bufs.settle().catch(() => {});
  }
}
