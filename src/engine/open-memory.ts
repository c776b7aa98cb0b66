/**
 * openToMemory: a whole sealed file decrypted once into one buffer, in parallel (the main thread
 * plus the engine's worker pool, each reading and opening its pieces of the chunk range straight
 * into a shared buffer). For loaders that need the plaintext in memory (a safetensors load_file,
 * an ONNX session), with no intermediate copies beyond one 8 MiB read buffer per thread. It is
 * runRanges into a memory sink, so it is the same range loop as openFile, on the same pool
 * threads: a long-lived process that loads several models starts its threads once.
 *
 * Every chunk, the final one included (which authenticates the length), is authenticated
 * before the buffer is handed out; on any failure the other jobs are told to stop, every one of
 * them is awaited, the buffer is wiped and the first error is thrown.
 */
import { open } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { wipeChunkKeys } from "../format/chunked.js";
import { fail, namingFile } from "../format/errors.js";
import type { ParsedHeader } from "../format/header.js";
import type { Identity } from "../format/stanza.js";
import { io } from "./fsutil.js";
import { Progress } from "./progress.js";
import { runRangesFor } from "./public-ranges.js";
import { prewarmWorkers, runsInParallel } from "./run-ranges.js";
import { unlockFile } from "./sealed-header.js";

/**
 * At least this much plaintext per thread: a model is loaded once and the caller waits for all
 * of it, so a thread is only worth its hand-off (and, in a fresh process, its start-up) for a
 * large share of the work.
 */
const MIN_BYTES_PER_THREAD = 32 << 20;

export interface OpenToMemoryOptions {
  readonly identities: readonly Identity[];
  readonly expectContext?: Readonly<Record<string, string>>;
  /** Refuse a public (integrity-only) file: E_NOT_ENCRYPTED (spec/FORMAT.md §2.5). */
  readonly requireEncrypted?: boolean;
  /** Threads decrypting, the main thread included (default: availableParallelism()). */
  readonly threads?: number;
}

export interface OpenedInMemory {
  readonly header: ParsedHeader;
  /** The plaintext; shared when worker threads wrote it. The caller wipes it when done. */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}

/** Errors about the file's contents name `path` (format/errors.ts, namingFile). */
export function openToMemory(path: string, opts: OpenToMemoryOptions): Promise<OpenedInMemory> {
  return namingFile(path, () => openInto(path, opts));
}

async function openInto(path: string, opts: OpenToMemoryOptions): Promise<OpenedInMemory> {
  const threads = opts.threads ?? availableParallelism();
  if (!Number.isSafeInteger(threads) || threads < 1) {
    fail("E_USAGE", `threads must be a whole number >= 1, got ${threads}`);
  }
  const fh = await io(`open ${path}`, () => open(path, "r"));
  try {
    const { size } = await io(`stat ${path}`, () => fh.stat());
    // Not awaited: thread start-up overlaps unlocking (the file size bounds the plaintext's).
    void prewarmWorkers(size, poolThreads(size, threads));
    const u = await unlockFile(fh.fd, path, size, opts);
    try {
      const total = u.plaintextLength;
      const workers = poolThreads(total, threads);
      const buffer = allocate(total, runsInParallel(total, workers));
      try {
        await runRangesFor({
          mode: "open",
          inFd: fh.fd,
          sink: { kind: "memory", buffer },
          keys: u.keys,
          chunkSize: u.header.descriptor.chunkSize,
          plaintextLength: total,
          chunksOffset: u.chunksOffset,
          workers,
          mainThreadJoins: true,
          progress: new Progress(total),
        });
      } catch (e) {
        new Uint8Array(buffer).fill(0);
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

/** Pool threads besides the main one: `threads` in all, each with its minimum share. */
function poolThreads(total: number, threads: number): number {
  return Math.max(1, Math.min(threads, Math.floor(total / MIN_BYTES_PER_THREAD))) - 1;
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
