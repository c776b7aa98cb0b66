/**
 * The size of libuv's thread pool for this process, before anything uses it. The pool defaults
 * to 4 threads; the engine's stream path keeps up to four cipher batches on it (two inputs in
 * flight, each split in two: stream-sealer.ts), and on a 2-core machine those four threads
 * compete with the main thread that feeds them. Measured on 1 GiB (issue 11, Node 20, 5
 * alternating runs): seal to /dev/null 0.364 s with 4 threads, 0.325 s with 2; open 0.352 vs
 * 0.309 s; pipes the same either way. So the pool gets one thread per core, 2 to 4 (never more
 * than Node's default, never one: a FIFO's open waits on the pool), unless the user set it.
 */
import { availableParallelism } from "node:os";

export function sizeThreadPool(
  env: NodeJS.ProcessEnv = process.env,
  cores: () => number = availableParallelism,
): void {
  if (env.UV_THREADPOOL_SIZE !== undefined) return;
  env.UV_THREADPOOL_SIZE = String(Math.min(4, Math.max(2, cores())));
}
