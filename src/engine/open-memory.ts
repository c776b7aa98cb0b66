/**
 * openToMemory: a whole sealed file decrypted once into one buffer, in parallel (the main thread
 * plus worker threads, each reading and opening its own run of chunks straight into a shared
 * buffer). For loaders that need the plaintext in memory (a safetensors load_file, an ONNX
 * session), with no intermediate copies beyond one 8 MiB read buffer per thread.
 *
 * Every chunk, the final one included (which authenticates the length), is authenticated
 * before the buffer is handed out; on any failure the buffer is wiped and the first error is
 * thrown.
 */
import { open } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { wipeChunkKeys } from "../format/chunked.js";
import { type ErrorCode, fail, TensorSealError } from "../format/errors.js";
import { PayloadGeometry } from "../format/geometry.js";
import type { ParsedHeader } from "../format/header.js";
import type { Identity } from "../format/stanza.js";
import { type ChunkRange, decryptRangeInto } from "./decrypt-into.js";
import { io } from "./fsutil.js";
import type { LoadJob, LoadReply } from "./memory-worker.js";
import { unlockFile } from "./sealed-header.js";

/** Below this much plaintext the main thread decrypts alone (a worker costs ~30 ms to start). */
const PARALLEL_THRESHOLD = 16 << 20;
/** At least this much plaintext per thread. */
const MIN_BYTES_PER_THREAD = 32 << 20;

export interface OpenToMemoryOptions {
  readonly identities: readonly Identity[];
  readonly expectContext?: Readonly<Record<string, string>>;
  /** Threads decrypting, the main thread included (default: availableParallelism()). */
  readonly threads?: number;
}

export interface OpenedInMemory {
  readonly header: ParsedHeader;
  /** The plaintext; shared when worker threads wrote it. The caller wipes it when done. */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}

export async function openToMemory(
  path: string,
  opts: OpenToMemoryOptions,
): Promise<OpenedInMemory> {
  const threads = opts.threads ?? availableParallelism();
  if (!Number.isSafeInteger(threads) || threads < 1) {
    fail("E_USAGE", `threads must be a whole number >= 1, got ${threads}`);
  }
  const fh = await io(`open ${path}`, () => open(path, "r"));
  try {
    const u = await unlockFile(fh, path, opts);
    try {
      const total = u.plaintextLength;
      const chunkSize = u.header.descriptor.chunkSize;
      const chunks = new PayloadGeometry(chunkSize).chunkCount(total);
      const parts =
        total < PARALLEL_THRESHOLD
          ? 1
          : Math.max(1, Math.min(threads, chunks, Math.floor(total / MIN_BYTES_PER_THREAD)));
      const buffer = allocate(total, parts > 1);
      const out = new Uint8Array(buffer);
      const base = { fd: fh.fd, chunkSize, plaintextLength: total, chunksOffset: u.chunksOffset };
      const ranges: ChunkRange[] = Array.from({ length: parts }, (_, i) => ({
        ...base,
        firstChunk: Math.round((chunks * i) / parts),
        endChunk: Math.round((chunks * (i + 1)) / parts),
      }));
      try {
        await decryptAll(ranges, u.keys, buffer, out);
      } catch (e) {
        out.fill(0);
        throw e;
      }
      return { header: u.header, buffer };
    } finally {
      wipeChunkKeys(u.keys);
    }
  } finally {
    await fh.close().catch(() => {});
  }
}

function allocate(total: number, shared: boolean): ArrayBuffer | SharedArrayBuffer {
  try {
    return shared ? new SharedArrayBuffer(total) : new ArrayBuffer(total);
  } catch {
    return fail(
      "E_UNSUPPORTED",
      `cannot allocate ${total} bytes in one buffer on this Node: read the file by ranges instead`,
    );
  }
}

/** Workers take ranges 1..n-1 while the main thread does range 0; every result is awaited. */
async function decryptAll(
  ranges: ChunkRange[],
  keys: { aeadKey: Uint8Array; baseNonce: Uint8Array },
  buffer: ArrayBuffer | SharedArrayBuffer,
  out: Uint8Array,
): Promise<void> {
  const workers = ranges
    .slice(1)
    .map((range) => runWorker(range, keys, buffer as SharedArrayBuffer));
  let mainError: unknown = null;
  try {
    decryptRangeInto(ranges[0]!, keys, out);
  } catch (e) {
    mainError = e;
  }
  const results = await Promise.allSettled(workers);
  if (mainError) throw mainError;
  for (const r of results) if (r.status === "rejected") throw r.reason;
}

function runWorker(
  range: ChunkRange,
  keys: { aeadKey: Uint8Array; baseNonce: Uint8Array },
  out: SharedArrayBuffer,
): Promise<void> {
  const w = new Worker(new URL("./memory-worker.js", import.meta.url));
  const job: LoadJob = {
    range,
    aeadKey: Uint8Array.from(keys.aeadKey),
    baseNonce: Uint8Array.from(keys.baseNonce),
    out,
  };
  return new Promise<void>((resolve, reject) => {
    w.once("message", (reply: LoadReply) => {
      if (reply.ok) resolve();
      else reject(new TensorSealError(reply.code as ErrorCode, reply.message));
    });
    w.once("error", (e) =>
      reject(new TensorSealError("E_IO", `decrypt worker failed: ${e.message}`)),
    );
    w.once("exit", (code) =>
      reject(new TensorSealError("E_IO", `decrypt worker exited (${code})`)),
    );
    w.postMessage(job);
    job.aeadKey.fill(0);
    job.baseNonce.fill(0);
  }).finally(() => w.terminate());
}
