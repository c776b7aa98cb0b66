/**
 * The running Node's own limits, for bench/engine.ts (issue 11: "engine to memory >= 0.8x of the
 * runtime's own AES-256-GCM throughput on two threads at the chunk size, next to memcpy"):
 *   node dist/bench/runtime-ceiling.js CHUNK THREADS SECONDS
 * prints one JSON line, GB/s, all measured with this process's node binary (so the same
 * OpenSSL the engine's addon resolves its EVP symbols from):
 *   gcmCache  THREADS worker_threads, each sealing one CHUNK-sized buffer over and over with
 *             createCipheriv("aes-256-gcm") + update + final + getAuthTag (the buffer stays in
 *             cache: the pure cipher ceiling the goal names)
 *   gcmSliced the same, each chunk fed to update() in 64 KiB slices: one cipher and one tag per
 *             chunk still, but no chunk-sized output Buffer per call (a 1 MiB update() output is
 *             a fresh allocation whose pages are faulted in each time; the best node:crypto
 *             does on a chunk, so the stricter ceiling)
 *   gcmDram   the same as gcmCache walking CHUNK-sized slices of a 128 MiB buffer per thread (data out of
 *             cache, as a big file's bytes are when the engine reads them)
 *   memcpy1 / memcpyN  Buffer.copy of 128 MiB buffers on one thread / THREADS threads
 * Every thread allocates and touches its buffers first; the clock starts when all are ready.
 */
import { createCipheriv, randomBytes } from "node:crypto";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

const BIG = 128 << 20;
const GB = 1e9;

/** update() slice of the `sliced` variant: small enough that its output Buffer is heap-cheap. */
const SLICE = 64 << 10;

type Task = { kind: "gcm" | "copy"; chunk: number; span: number; seconds: number; slice?: number };

/** Runs in a worker: sets up, says ready, waits for go, loops for `seconds`, reports bytes. */
function work(task: Task): void {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const src = randomBytes(task.span);
  const dst = task.kind === "copy" ? Buffer.alloc(task.span, 1) : null;
  const pass = (): number => {
    if (dst) return src.copy(dst);
    for (let off = 0; off + task.chunk <= src.length; off += task.chunk) {
      const c = createCipheriv("aes-256-gcm", key, iv);
      const step = task.slice ?? task.chunk;
      for (let at = off; at < off + task.chunk; at += step) {
        c.update(src.subarray(at, Math.min(at + step, off + task.chunk)));
      }
      c.final();
      c.getAuthTag();
    }
    return src.length - (src.length % task.chunk);
  };
  pass(); // warm: pages touched, cipher code paths hot
  parentPort!.once("message", () => {
    const t0 = process.hrtime.bigint();
    const until = t0 + BigInt(Math.round(task.seconds * 1e9));
    let bytes = 0;
    let now = t0;
    while (now < until) {
      bytes += pass();
      now = process.hrtime.bigint();
    }
    parentPort!.postMessage({ bytes, seconds: Number(now - t0) / 1e9 });
  });
  parentPort!.postMessage("ready");
}

/** Aggregate GB/s of `threads` workers running `task` at once (sum of bytes / slowest clock). */
async function together(task: Task, threads: number): Promise<number> {
  const workers = Array.from(
    { length: threads },
    () => new Worker(new URL(import.meta.url), { workerData: task }),
  );
  await Promise.all(workers.map((w) => new Promise((r) => w.once("message", r))));
  const results = await Promise.all(
    workers.map(
      (w) =>
        new Promise<{ bytes: number; seconds: number }>((r) => {
          w.once("message", r);
          w.postMessage("go");
        }),
    ),
  );
  await Promise.all(workers.map((w) => w.terminate()));
  const bytes = results.reduce((s, r) => s + r.bytes, 0);
  return bytes / Math.max(...results.map((r) => r.seconds)) / GB;
}

if (isMainThread) {
  const [chunkArg, threadsArg, secondsArg] = process.argv.slice(2);
  const chunk = Number(chunkArg ?? 1 << 20);
  const threads = Number(threadsArg ?? 2);
  const seconds = Number(secondsArg ?? 2);
  const gcm = (span: number, slice?: number) =>
    together({ kind: "gcm", chunk, span, seconds, ...(slice ? { slice } : {}) }, threads);
  const copy = (n: number) => together({ kind: "copy", chunk, span: BIG, seconds }, n);
  const result = {
    gcmCache: await gcm(chunk),
    gcmSliced: await gcm(chunk, Math.min(SLICE, chunk)),
    gcmDram: await gcm(BIG),
    memcpy1: await copy(1),
    memcpyN: await copy(threads),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  work(workerData as Task);
}
