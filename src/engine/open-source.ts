/**
 * openSource and verifySource: openFile and verifyFile for a sealed file behind a RandomSource
 * that worker threads cannot pread (a remote object). The header checks are the same
 * (sealed-header.ts, unlockSource); then the payload arrives in batches of whole chunks:
 * from a source that streams (src.stream: one GET of the whole payload, cut into batches as
 * it arrives, up to `window` batches read ahead), else fetched as ranges, up to `window`
 * batches in flight at once. Either way the network works while pool threads authenticate,
 * and batches are handed on strictly in order, each only after every chunk in it
 * authenticated with exactly format/chunked.ts's openChunk. Memory stays bounded by about
 * `window` batches, whatever the file's size.
 *
 * A path output is the engine's atomic output (temp file, fsync, rename: nothing appears
 * unless every chunk authenticated); a device or FIFO is written in place; a Writable (stdout)
 * receives each authenticated batch as it comes, so, as with openStream, a consumer may have
 * received earlier batches before a later failure rejects the promise.
 */
import type { Writable } from "node:stream";
import { type ChunkKeys, openChunk, TAG_SIZE, wipeChunkKeys } from "../format/chunked.js";
import { namingFile } from "../format/errors.js";
import { PayloadGeometry } from "../format/geometry.js";
import { withAtomicOutput } from "./atomic.js";
import { authFailed } from "./batch.js";
import { writeAll } from "./fsutil.js";
import { batchAsync, nativeGcm } from "./native-gcm.js";
import type { OpenOptions, OpenResult, VerifyOptions } from "./options.js";
import { outputKind, withOutputStream } from "./output.js";
import { Progress } from "./progress.js";
import { type UnlockedFile, unlockSource } from "./sealed-header.js";
import type { RandomSource } from "./source.js";
import { BufferPool, isNodeWriter, PushSink } from "./stream-io.js";
import { splitChunks } from "./stream-sealer.js";

/** Sealed bytes per fetch: large enough to amortise a request, small enough to bound memory. */
export const SOURCE_BATCH_BYTES = 8 << 20;
/**
 * Sealed bytes per batch of a streamed read: no request to amortise, so only enough to keep
 * both pool threads busy (two 1 MiB chunks). About five batches are alive at once (three
 * sealed pieces: receiving, ready, authenticating; two plaintext ones: decrypting, being
 * written), so this sets the memory: 8 MiB batches peaked about 14 MiB higher for a 512 MiB open to
 * stdout (docs/BENCHMARKS.md). A load into memory keeps SOURCE_BATCH_BYTES.
 */
export const STREAM_BATCH_BYTES = 3 << 20;
/** Batches fetched ahead of the one being authenticated. */
export const SOURCE_WINDOW = 4;

export interface SourceOpenOptions extends Omit<OpenOptions, "workers"> {
  /** Batches in flight at once (default SOURCE_WINDOW). */
  readonly window?: number;
  /**
   * Fetch `window` ranged batches in parallel even where the source streams: for a store that
   * caps one connection's throughput below the link's (one streamed GET is faster on a fast
   * link: docs/BENCHMARKS.md). Default false.
   */
  readonly ranges?: boolean;
}

/** Plaintext bytes of one batch, in order, at their plaintext offset. */
type Emit = ((plain: Buffer[], offset: number) => Promise<void>) & {
  end?(): Promise<void>;
  /** Where a batch decrypts to, if the output is memory: no copy after decryption. */
  into?(offset: number, length: number): Buffer;
  /** Sealed bytes per streamed batch (default STREAM_BATCH_BYTES). */
  streamBatchBytes?: number;
};

/** Opens `src` into `output` (a path, or a Writable such as stdout). The caller closes `src`. */
export function openSource(
  src: RandomSource,
  output: string | Writable,
  opts: SourceOpenOptions,
): Promise<OpenResult> {
  return namingFile(src.name, async () => {
    if (typeof output !== "string") return run(src, opts, streamEmit(output));
    if ((await outputKind(output)) === "special") {
      return withOutputStream(output, (w) => run(src, opts, streamEmit(w)));
    }
    return withAtomicOutput(output, (out) => fileWriter(out.fd, (emit) => run(src, opts, emit)));
  });
}

/** Authenticates every chunk of `src`, writes nothing. The caller closes `src`. */
export function verifySource(
  src: RandomSource,
  opts: VerifyOptions & Pick<SourceOpenOptions, "window" | "ranges">,
): Promise<OpenResult> {
  return namingFile(src.name, () =>
    run(src, opts, async (plain) => {
      for (const p of plain) p.fill(0);
    }),
  );
}

/**
 * Opens `src` into one buffer of the plaintext's length (a full load from object storage),
 * each batch decrypted straight into its place. On any failure the buffer is wiped and never
 * returned. The caller closes `src`.
 */
export function openSourceToMemory(
  src: RandomSource,
  opts: SourceOpenOptions,
): Promise<OpenResult & { buffer: Buffer }> {
  return namingFile(src.name, async () => {
    let buffer: Buffer | null = null;
    const emit: Emit = Object.assign(async () => {}, {
      into(offset: number, length: number) {
        return buffer!.subarray(offset, offset + length);
      },
      // No plaintext batches here, and the sealed ones are small beside the result: the
      // larger batches (pool threads get 3-4 chunks each per call) cost nothing to memory.
      streamBatchBytes: SOURCE_BATCH_BYTES,
    });
    try {
      const result = await run(src, opts, emit, (plaintextLength) => {
        // Its own ArrayBuffer (never a pool slice): callers view tensors over `buffer.buffer`.
        buffer = Buffer.allocUnsafeSlow(plaintextLength);
      });
      return { ...result, buffer: buffer! };
    } catch (e) {
      (buffer as Buffer | null)?.fill(0);
      throw e;
    }
  });
}

/**
 * A Writable's batches: for Node's own writers (stdout, a file stream) decrypted into pooled
 * buffers, each used again once its write completed (a fresh 8 MiB buffer per batch waited
 * for the garbage collector: docs/BENCHMARKS.md); any other Writable may keep what it was
 * given, so it gets fresh ones.
 */
function streamEmit(out: Writable): Emit & { end(): Promise<void> } {
  const pool = isNodeWriter(out) ? new BufferPool() : null;
  const sink = new PushSink(out, pool);
  const emit = (plain: Buffer[]) => sink.write(plain);
  const into = pool ? (_offset: number, length: number) => pool.take(length) : undefined;
  return Object.assign(emit, { end: () => sink.end(), ...(into ? { into } : {}) });
}

/**
 * A file's batches: each written while the next one decrypts (one write in flight: waiting
 * for every write before decrypting on, small batches made a 512 MiB open ~20% slower), into
 * two plaintext buffers used in turn, each wiped once written. `fn` is run with the emit; a
 * write still in flight when it fails is waited for (the output is removed after).
 */
async function fileWriter<T>(fd: number, fn: (emit: Emit) => Promise<T>): Promise<T> {
  const buffers: (Buffer | null)[] = [null, null];
  let turn = 0;
  let writing: Promise<void> | null = null;
  const into = (_offset: number, length: number): Buffer => {
    turn ^= 1;
    let b = buffers[turn];
    if (!b || b.length < length) {
      b = Buffer.allocUnsafeSlow(length);
      buffers[turn] = b;
    }
    return b.subarray(0, length);
  };
  const write = async (plain: Buffer[], offset: number) => {
    let at = offset;
    for (const p of plain) {
      await writeAll(fd, p, at);
      at += p.length;
      p.fill(0);
    }
  };
  const emit: Emit = Object.assign(
    async (plain: Buffer[], offset: number) => {
      await writing; // the buffer `into` hands out next must be written
      writing = write(plain, offset);
      writing.catch(() => {}); // surfaces at the next emit or at end
    },
    { into, end: async () => void (await writing) },
  );
  try {
    return await fn(emit);
  } finally {
    await (writing as Promise<void> | null)?.catch(() => {});
  }
}

async function run(
  src: RandomSource,
  opts: SourceOpenOptions,
  emit: Emit,
  unlocked?: (plaintextLength: number) => void,
): Promise<OpenResult> {
  const file = await unlockSource(src, opts);
  const progress = new Progress(file.plaintextLength, opts.onProgress);
  try {
    unlocked?.(file.plaintextLength);
    const window = Math.max(1, opts.window ?? SOURCE_WINDOW);
    if (src.stream && !opts.ranges) await pumpStream(src, file, emit, window, progress);
    else await pump(src, file, emit, window, progress);
    progress.stop(true);
  } finally {
    progress.stop(false);
    wipeChunkKeys(file.keys);
  }
  return {
    descriptor: file.header.descriptor,
    plaintextLength: file.plaintextLength,
    generation: file.header.generation,
  };
}

/** The payload's chunking, and chunks per batch: whole chunks, about `bytes` sealed (>= 1). */
function batchLayout(file: UnlockedFile, bytes: number) {
  const cs = file.header.descriptor.chunkSize;
  const g = new PayloadGeometry(cs);
  const total = file.plaintextLength;
  const perBatch = Math.max(1, Math.floor(bytes / g.sealedChunkSize));
  return { cs, g, total, chunks: g.chunkCount(total), perBatch };
}

/**
 * The streamed path: the payload as one sequential read, in batches of whole chunks, read
 * ahead about `window` batches while pool threads authenticate the current one.
 */
async function pumpStream(
  src: RandomSource,
  file: UnlockedFile,
  emit: Emit,
  window: number,
  progress: Progress,
): Promise<void> {
  const { cs, g, total, chunks, perBatch } = batchLayout(
    file,
    emit.streamBatchBytes ?? STREAM_BATCH_BYTES,
  );
  const sealedLength = total + chunks * TAG_SIZE;
  // The source holds a couple of pieces itself once its consumer is busy (ranged.ts): half
  // the window here keeps about `window` batches ahead in all.
  const spare: Buffer[] = [];
  const batches = readAhead(
    src.stream!(file.chunksOffset, sealedLength, perBatch * g.sealedChunkSize, spare),
    Math.max(1, Math.ceil(window / 2)),
  );
  let first = 0;
  for await (const sealed of batches) {
    const plain = await openBatchOffThread(file.keys, g, first, total, sealed, emit.into);
    spare.push(sealed); // ciphertext, done with: the source refills it
    await emit(plain, first * cs);
    progress.add(plain.reduce((n, p) => n + p.length, 0));
    first += perBatch;
  }
  await emit.end?.();
}

/**
 * Pulls `src` up to `depth` items ahead of the consumer (so the network keeps receiving while
 * the consumer works). Stopping early (a failure) waits for the pulls already asked for, then
 * ends `src`: nothing is still receiving when the caller closes the source.
 */
export async function* readAhead<T>(src: AsyncIterable<T>, depth: number): AsyncGenerator<T> {
  const it = src[Symbol.asyncIterator]();
  const queue: Promise<IteratorResult<T>>[] = [];
  let finished = false;
  try {
    for (;;) {
      while (queue.length < depth) {
        const p = it.next();
        p.catch(() => {}); // awaited in order below
        queue.push(p);
      }
      const r = await queue.shift()!;
      if (r.done) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    if (!finished) {
      await Promise.allSettled(queue);
      await it.return?.(undefined);
    }
  }
}

async function pump(
  src: RandomSource,
  file: UnlockedFile,
  emit: Emit,
  window: number,
  progress: Progress,
): Promise<void> {
  const { cs, g, total, chunks, perBatch } = batchLayout(file, SOURCE_BATCH_BYTES);
  const batches = Math.ceil(chunks / perBatch);
  const inFlight = new Map<number, Promise<Buffer>>();
  const fetch = (b: number) => {
    const first = b * perBatch;
    const end = Math.min(chunks, first + perBatch);
    const ptLen = Math.min(end * cs, total) - first * cs;
    const p = src.read(
      file.chunksOffset + first * g.sealedChunkSize,
      ptLen + (end - first) * TAG_SIZE,
    );
    p.catch(() => {}); // awaited in order below; a later batch's failure must not go unhandled
    inFlight.set(b, p);
  };
  try {
    for (let b = 0; b < batches; b++) {
      for (let a = b; a < Math.min(batches, b + Math.max(1, window)); a++) {
        if (!inFlight.has(a)) fetch(a);
      }
      const sealed = await inFlight.get(b)!;
      inFlight.delete(b);
      const first = b * perBatch;
      const plain = await openBatchOffThread(file.keys, g, first, total, sealed, emit.into);
      await emit(plain, first * cs);
      progress.add(plain.reduce((n, p) => n + p.length, 0));
    }
    await emit.end?.();
  } finally {
    // Nothing may still be fetching for an output about to be removed, or a closed source.
    await Promise.allSettled(inFlight.values());
  }
}

/**
 * openBatch on libuv pool threads (the addon's openBatchAsync, the chunks split across two),
 * so this thread goes on receiving the batches in flight while a batch is authenticated: done
 * here, an 8 MiB batch held the event loop (and with it the downloads) for several
 * milliseconds per batch. The same rule: nothing of the batch is returned unless every chunk
 * authenticated; a failing batch's output is wiped.
 */
async function openBatchOffThread(
  keys: ChunkKeys,
  g: PayloadGeometry,
  first: number,
  total: number,
  sealed: Buffer,
  into?: (offset: number, length: number) => Buffer,
): Promise<Buffer[]> {
  const openAsync = nativeGcm?.openBatchAsync;
  const count = Math.ceil(sealed.length / g.sealedChunkSize);
  const ptLength = sealed.length - count * TAG_SIZE;
  // A public (suite 2) payload is plaintext with GMAC tags: openBatch's chunk-by-chunk path.
  if (!openAsync || count === 0 || keys.integrityOnly) {
    const plain = openBatch(keys, g, first, total, sealed);
    if (!into) return plain;
    const target = into(first * g.chunkSize, ptLength);
    let at = 0;
    for (const p of plain) {
      at += p.copy(target, at);
      p.fill(0);
    }
    return [target];
  }
  const plain = into ? into(first * g.chunkSize, ptLength) : Buffer.allocUnsafe(ptLength);
  const sc = g.sealedChunkSize;
  const work = splitChunks(count).map(([at, n]) => {
    const length = at + n === count ? sealed.length - at * sc : n * sc;
    return batchAsync(
      openAsync,
      keys.aeadKey,
      keys.baseNonce,
      first + at,
      n,
      g.chunkSize,
      sealed,
      at * sc,
      length,
      plain,
      at * g.chunkSize,
    );
  });
  let results: number[];
  try {
    results = await Promise.all(work);
  } catch (e) {
    await Promise.allSettled(work);
    plain.fill(0);
    throw e;
  }
  const bad = results.filter((r) => r < 0);
  if (bad.length > 0) {
    plain.fill(0);
    authFailed(-1 - Math.max(...bad));
  }
  return [plain];
}

/**
 * Every chunk of the batch authenticated before any of it is returned: with the native addon
 * (the same OpenSSL AES-256-GCM, one call per batch into one buffer, as range-job.ts uses),
 * else format/chunked.ts's openChunk chunk by chunk.
 */
function openBatch(
  keys: ChunkKeys,
  g: PayloadGeometry,
  first: number,
  total: number,
  sealed: Buffer,
): Buffer[] {
  const count = Math.ceil(sealed.length / g.sealedChunkSize);
  // A public (suite 2) payload is plaintext with GMAC tags: openChunk, never the AEAD batch.
  if (nativeGcm && !keys.integrityOnly && count > 0) {
    const ptLen = sealed.length - count * TAG_SIZE;
    const plain = Buffer.allocUnsafe(ptLen);
    const r = nativeGcm.openBatch(
      keys.aeadKey,
      keys.baseNonce,
      first,
      count,
      g.chunkSize,
      sealed,
      0,
      sealed.length,
      plain,
      0,
    );
    if (r < 0) {
      plain.fill(0);
      authFailed(-1 - r);
    }
    return [plain];
  }
  const out: Buffer[] = [];
  let r = 0;
  try {
    for (let k = first; r < sealed.length; k++) {
      const n = g.chunkPlaintextLength(k, total) + TAG_SIZE;
      out.push(openChunk(keys, k, sealed.subarray(r, r + n)));
      r += n;
    }
  } catch (e) {
    for (const p of out) p.fill(0);
    throw e;
  }
  return out;
}
