/**
 * Full load of a sealed safetensors file: the whole payload is decrypted once, in parallel
 * (the main thread plus worker threads, each reading and opening its own run of chunks straight
 * into one shared buffer), then every tensor is a typed-array view into that buffer. This is
 * the sealed twin of safetensors' load_file: one copy of the model in memory, no per-tensor
 * reads, no intermediate buffers beyond one 8 MiB read buffer per thread.
 *
 * Every chunk, the final one included (which authenticates the length), is authenticated
 * before the buffer is handed out; on any failure the buffer is wiped and the first error is
 * thrown. For one tensor at a time use openSealedSafetensors (random access).
 */
import { open } from "node:fs/promises";
import { availableParallelism, endianness } from "node:os";
import { Worker } from "node:worker_threads";
import { io } from "../../engine/fsutil.js";
import { unlockFile } from "../../engine/sealed-header.js";
import { wipeChunkKeys } from "../../format/chunked.js";
import { type ErrorCode, fail, TensorSealError } from "../../format/errors.js";
import { PayloadGeometry } from "../../format/geometry.js";
import type { Identity } from "../../format/stanza.js";
import { type ChunkRange, decryptRangeInto } from "./decrypt-range.js";
import { type TensorArray, toTypedArray, viewTypedArray } from "./dtypes.js";
import { LENGTH_PREFIX_SIZE, parseHeader, readHeaderLength } from "./header.js";
import type { LoadJob, LoadReply } from "./load-worker.js";
import type { TensorMeta } from "./sealed.js";

/** Below this much plaintext the main thread decrypts alone (a worker costs ~30 ms to start). */
const PARALLEL_THRESHOLD = 16 << 20;
/** At least this much plaintext per thread. */
const MIN_BYTES_PER_THREAD = 32 << 20;

export interface LoadSafetensorsOptions {
  readonly expectContext?: Readonly<Record<string, string>>;
  /** Threads decrypting, the main thread included (default: availableParallelism()). */
  readonly threads?: number;
}

export interface LoadedSafetensors {
  readonly metadata: Readonly<Record<string, string>>;
  /** name → dtype, shape, byte length; in file order. */
  readonly tensors: Readonly<Record<string, TensorMeta>>;
  /** name → typed array (a view into `buffer`; F16/BF16/F8 as raw bits, see dtypes.ts). */
  readonly arrays: Map<string, TensorArray>;
  /**
   * The decrypted payload the arrays view (the safetensors header bytes in it are zeroed).
   * Wipe it with `new Uint8Array(buffer).fill(0)` when done with the weights.
   */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** Plaintext bytes decrypted: the whole payload, once. */
  readonly decryptedBytes: number;
}

/** Decrypts the whole sealed safetensors file into one buffer and returns tensor views. */
export async function loadSealedSafetensors(
  path: string,
  identities: readonly Identity[],
  opts: LoadSafetensorsOptions = {},
): Promise<LoadedSafetensors> {
  if (endianness() !== "LE") fail("E_UNSUPPORTED", "safetensors needs a little-endian host");
  const threads = opts.threads ?? availableParallelism();
  if (!Number.isSafeInteger(threads) || threads < 1) {
    fail("E_USAGE", `threads must be a whole number >= 1, got ${threads}`);
  }
  const fh = await io(`open ${path}`, () => open(path, "r"));
  try {
    const u = await unlockFile(fh, path, { identities, expectContext: opts.expectContext });
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
      return views(buffer, out, total);
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
      `cannot allocate ${total} bytes in one buffer on this Node: use openSealedSafetensors and getTensor`,
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
  const w = new Worker(new URL("./load-worker.js", import.meta.url));
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
    w.once("error", (e) => reject(new TensorSealError("E_IO", `load worker failed: ${e.message}`)));
    w.once("exit", (code) => reject(new TensorSealError("E_IO", `load worker exited (${code})`)));
    w.postMessage(job);
    job.aeadKey.fill(0);
    job.baseNonce.fill(0);
  }).finally(() => w.terminate());
}

function views(
  buffer: ArrayBuffer | SharedArrayBuffer,
  out: Uint8Array,
  total: number,
): LoadedSafetensors {
  const n = readHeaderLength(out.subarray(0, Math.min(LENGTH_PREFIX_SIZE, total)), total);
  const header = parseHeader(
    out.subarray(LENGTH_PREFIX_SIZE, LENGTH_PREFIX_SIZE + n),
    total - LENGTH_PREFIX_SIZE - n,
  );
  out.fill(0, 0, header.dataStart);
  const tensors: Record<string, TensorMeta> = Object.create(null);
  const arrays = new Map<string, TensorArray>();
  for (const [name, t] of header.tensors) {
    tensors[name] = { dtype: t.dtype, shape: t.shape, byteLength: t.byteLength };
    const at = header.dataStart + t.dataOffsets[0];
    arrays.set(
      name,
      viewTypedArray(t.dtype, buffer, at, t.byteLength) ??
        toTypedArray(t.dtype, out.subarray(at, at + t.byteLength)),
    );
  }
  return { metadata: header.metadata, tensors, arrays, buffer, decryptedBytes: total };
}
