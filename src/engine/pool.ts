/**
 * The engine's one shared pool of range workers, for every parallel operation (sealFile,
 * openFile, verifyFile, openToMemory), so a long-lived process starts its threads once. Workers
 * start lazily (or on prewarm), run one job at a time, are unref'd while idle (an idle pool
 * never keeps the process alive) and are terminated after a few idle seconds. Callers bound
 * their own concurrency (runRanges runs at most `workers` jobs at once), so the pool only grows
 * to the largest concurrent demand.
 */
import { Worker } from "node:worker_threads";
import { TensorSealError } from "../format/errors.js";
import type { JobMessage, JobReply } from "./worker-protocol.js";

const WORKER_URL = new URL("./worker.js", import.meta.url);
const IDLE_CLOSE_MS = 5000;

/** What a job resolves to: done, or stopped early because another job of the operation failed. */
export type JobOutcome = "done" | "aborted";

class RangeWorkerPool {
  private readonly idle: Worker[] = [];
  private readonly all = new Set<Worker>();
  private idleTimer: NodeJS.Timeout | null = null;
  private nextId = 1;
  private startedCount = 0;

  run(job: Omit<JobMessage, "id">): Promise<JobOutcome> {
    const worker = this.acquire();
    const id = this.nextId++;
    return new Promise<JobOutcome>((resolve, reject) => {
      const cleanup = () => {
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
      };
      const onMessage = (reply: JobReply) => {
        if (reply.id !== id) return;
        cleanup();
        this.release(worker);
        if (reply.ok) resolve("done");
        else if (reply.aborted) resolve("aborted");
        else reject(new TensorSealError(reply.code, reply.message));
      };
      const onError = (e: Error) => {
        cleanup();
        this.discard(worker);
        reject(new TensorSealError("E_IO", `a worker thread failed: ${e.message}`));
      };
      const onExit = (code: number) => {
        cleanup();
        this.discard(worker);
        reject(new TensorSealError("E_IO", `a worker thread exited unexpectedly (code ${code})`));
      };
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
      worker.ref();
      // postMessage clones synchronously, so these private copies can be wiped right after.
      const aeadKey = new Uint8Array(job.aeadKey);
      const baseNonce = new Uint8Array(job.baseNonce);
      const resealKeys = job.resealKeys && {
        aeadKey: new Uint8Array(job.resealKeys.aeadKey),
        baseNonce: new Uint8Array(job.resealKeys.baseNonce),
      };
      try {
        worker.postMessage({
          ...job,
          id,
          aeadKey,
          baseNonce,
          ...(resealKeys && { resealKeys }),
        } satisfies JobMessage);
      } finally {
        aeadKey.fill(0);
        baseNonce.fill(0);
        resealKeys?.aeadKey.fill(0);
        resealKeys?.baseNonce.fill(0);
      }
    });
  }

  /** Starts idle workers up to `n` now, so thread start-up overlaps the caller's header work. */
  prewarm(n: number): Promise<void> {
    const started: Promise<unknown>[] = [];
    while (this.all.size < n) {
      const worker = this.spawn();
      this.idle.push(worker);
      // Referenced until it is online (an awaiting caller must not see the loop run dry),
      // then idle and unreferenced like any released worker.
      started.push(
        new Promise((resolve) => worker.once("online", resolve).once("error", resolve)).then(() => {
          if (this.idle.includes(worker)) this.release(worker, false);
        }),
      );
    }
    return Promise.all(started).then(() => {});
  }

  /** Terminates every worker (tests, or a CLI that wants to exit promptly). */
  async close(): Promise<void> {
    this.clearTimer();
    const workers = [...this.all];
    this.all.clear();
    this.idle.length = 0;
    await Promise.all(workers.map((w) => w.terminate()));
  }

  get size(): number {
    return this.all.size;
  }

  /** Threads started since the process began (tests: a warm pool starts none). */
  get started(): number {
    return this.startedCount;
  }

  private acquire(): Worker {
    this.clearTimer();
    return this.idle.pop() ?? this.spawn();
  }

  private spawn(): Worker {
    const worker = startWorker();
    this.all.add(worker);
    this.startedCount++;
    return worker;
  }

  private release(w: Worker, push = true): void {
    w.unref();
    if (push) this.idle.push(w);
    this.clearTimer();
    this.idleTimer = setTimeout(() => void this.closeIdle(), IDLE_CLOSE_MS);
    this.idleTimer.unref();
  }

  private async closeIdle(): Promise<void> {
    const idle = this.idle.splice(0);
    for (const w of idle) this.all.delete(w);
    await Promise.all(idle.map((w) => w.terminate()));
  }

  private discard(w: Worker): void {
    this.all.delete(w);
    const i = this.idle.indexOf(w);
    if (i >= 0) this.idle.splice(i, 1);
    void w.terminate();
  }

  private clearTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }
}

/**
 * A range worker's young generation is kept small: its JS allocates a few small objects per
 * batch (the bytes live in reused or shared buffers), so V8's default semi-spaces only grew
 * RSS: 1 GiB file -> file seal/open peaked 1.5 MiB lower on Node 24.22 (0.5 on Node 20.20), at
 * the same CPU time (docs/BENCHMARKS.md, 2026-12-05).
 */
const LIMITS = { resourceLimits: { maxYoungGenerationSizeMb: 1 } };

/**
 * A worker inherits the parent's flags, which Node filters itself (process-wide ones such as
 * --secure-heap are dropped). Only --input-type (`node --input-type=module -e ...`) must go,
 * and an explicit list is validated strictly: should it hold a process-wide flag too, the
 * worker starts without flags rather than fail the whole seal or open.
 */
function startWorker(): Worker {
  const args = process.execArgv;
  if (!args.some((a) => a === "--input-type" || a.startsWith("--input-type="))) {
    return new Worker(WORKER_URL, LIMITS);
  }
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--input-type") i++;
    else if (!args[i]!.startsWith("--input-type=")) kept.push(args[i]!);
  }
  try {
    return new Worker(WORKER_URL, { ...LIMITS, execArgv: kept });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ERR_WORKER_INVALID_EXEC_ARGV") throw e;
    return new Worker(WORKER_URL, { ...LIMITS, execArgv: [] });
  }
}

export const workerPool = new RangeWorkerPool();

/** Terminates the engine's worker threads now (they also go away by themselves when idle). */
export function closeWorkers(): Promise<void> {
  return workerPool.close();
}
