/**
 * Streaming seal and open for pipes (stdin/stdout). With the native addon the cipher work runs
 * on libuv pool threads (each input's whole chunks split across two) while this thread reads
 * the next input and writes the previous output (InFlight below); without it, on this thread.
 * Bounded memory: two read buffers, up to three partial chunks, the output of two reads, up to
 * OUTPUT_AHEAD_BYTES of output waiting for a slow consumer (engine/stream-io.ts). A read asks for at least the bytes that complete
 * the next chunk, so whole chunks go out as they arrive. A sealed stream records no plaintext
 * length (the final short chunk still authenticates where it ends).
 * openStream releases each chunk's plaintext only after that chunk authenticated, but a consumer
 * may have received earlier chunks before a later failure (truncation, tampering) rejects the
 * promise: whoever needs all-or-nothing must use openFile, or discard the output on rejection.
 * The input is a Readable, or a descriptor the caller owns (read with fs.read, not closed).
 */
import type { Readable, Writable } from "node:stream";
import { contextIsIntegrityOnly, PAYLOAD_PREFIX_SIZE, TAG_SIZE } from "../format/chunked.js";
import { encodeDescriptor } from "../format/descriptor.js";
import { fail } from "../format/errors.js";
import { payloadInputKey } from "../format/filekey.js";
import { PayloadGeometry } from "../format/geometry.js";
import { type ParsedHeader, PREFIX_SIZE, parseHeader, parsePrefix } from "../format/header.js";
import { makeDescriptor } from "../format/message.js";
import { PayloadOpener, PayloadSealer, payloadContext } from "../format/payload.js";
import { unlockFileKey } from "../format/unlock.js";
import { inputChanged } from "./batch.js";
import { nativeGcm } from "./native-gcm.js";
import type { OpenResult, SealResult, StreamOpenOptions, StreamSealOptions } from "./options.js";
import { Progress } from "./progress.js";
import { prepareHeader } from "./seal-header.js";
import { checkExpectedContext, checkMagicSoFar, rejectShortHeader } from "./sealed-header.js";
import { fileSource } from "./stream-file.js";
import { BufferPool, isNodeWriter, type PullSource, PushSink, pullSource } from "./stream-io.js";
import { NativeStreamOpener } from "./stream-opener.js";
import { NativeStreamSealer } from "./stream-sealer.js";

export async function sealStream(
  input: Readable | number,
  output: Writable,
  opts: StreamSealOptions,
): Promise<SealResult & { plaintextLength: number }> {
  // A known length (a regular file sealed as a stream, e.g. to object storage) is recorded,
  // so readers get random access and `inspect` shows it; the input must then hold exactly it.
  const descriptor = makeDescriptor(opts, opts.plaintextLength ?? null);
  const descriptorBytes = encodeDescriptor(descriptor);
  const { header, inputKey, salt } = await prepareHeader(opts, descriptorBytes);
  const pool = isNodeWriter(output) ? new BufferPool() : null;
  const sealer = streamSealer(
    inputKey,
    payloadContext(descriptorBytes),
    descriptor.chunkSize,
    salt,
    pool,
  );
  inputKey.fill(0);
  const progress = new Progress(0, opts.onProgress);
  let finished = false;
  await run(input, opts.inputOffset, output, pool, async (source, sink) => {
    const work = new InFlight();
    try {
      await sink.write([Buffer.concat([header, sealer.prefix])]);
      for (;;) {
        // The next input is read, and the previous output written, while the cipher works.
        // Whole chunks where the source can give more: nothing is staged (copied aside).
        const b = await source.read(sealer.wanted, descriptor.chunkSize, sealer.mappable);
        if (b.length === 0) break;
        progress.add(b.length);
        await work.submit(sealer.push(b), (out) => sink.write(out));
      }
      await work.drain((out) => sink.write(out));
      if (opts.plaintextLength !== undefined && progress.done !== opts.plaintextLength) {
        // Checked once at the end: a longer input is caught here too, before the final chunk.
        fail(
          "E_IO",
          `input held ${progress.done} bytes, not the ${opts.plaintextLength} recorded: it changed while being sealed`,
        );
      }
      finished = true;
      await sink.write(sealer.finish());
    } finally {
      progress.stop(false);
      await work.settle(); // nothing still works on the buffers wiped below
      // finish() is what wipes the sealer's keys; after a failure call it for that alone.
      if (!finished) quietly(() => sealer.finish());
    }
  });
  opts.onProgress?.(progress.done, progress.done);
  const payloadLength = new PayloadGeometry(descriptor.chunkSize).payloadLength(progress.done);
  return {
    descriptor,
    headerLength: header.length,
    sealedLength: header.length + payloadLength,
    plaintextLength: progress.done,
  };
}

export async function openStream(
  input: Readable | number,
  output: Writable,
  opts: StreamOpenOptions,
): Promise<OpenResult> {
  let header: ParsedHeader | null = null;
  let opener: StreamOpener | null = null;
  let finished = false;
  const progress = new Progress(0, opts.onProgress);
  const pool = isNodeWriter(output) ? new BufferPool() : null;
  await run(input, opts.inputOffset, output, pool, async (source, sink) => {
    const release = async (parts: Buffer[]) => {
      checkReleased(header!, opener!.released, false);
      for (const p of parts) progress.add(p.length);
      await sink.write(parts);
    };
    const work = new InFlight();
    try {
      // The header: read until the prefix says how long it is, then until it is complete.
      const pending: Buffer[] = [];
      let pendingLength = 0;
      let need: number | null = null;
      while (!opener) {
        const b = await source.read((need ?? PREFIX_SIZE) - pendingLength);
        if (b.length === 0) return rejectShortHeader(Buffer.concat(pending));
        pending.push(Buffer.from(b)); // the source reuses its buffer
        pendingLength += b.length;
        need ??= headerLengthIfKnown(pending);
        if (need === null || pendingLength < need) continue;
        const all = Buffer.concat(pending);
        header = parseHeader(all.subarray(0, need));
        opener = await makeOpener(header, opts, pool);
        await work.submit(opener.push(all.subarray(need)), release);
      }
      const sealedChunk = (header as ParsedHeader).descriptor.chunkSize + TAG_SIZE;
      for (;;) {
        // The next input is read, and the previous plaintext written, while the cipher works.
        const b = await source.read(opener.wanted, sealedChunk);
        if (b.length === 0) break;
        await work.submit(opener.push(b), release);
      }
      await work.drain(release);
      const last = opener.finish();
      finished = true;
      checkReleased(header!, opener.released, true);
      for (const p of last) progress.add(p.length);
      await sink.write(last);
    } finally {
      progress.stop(false);
      await work.settle(); // nothing still works on the buffers wiped below
      // An unfinished opener wipes its keys when finish() fails; call it for that alone.
      if (opener && !finished) quietly(() => (opener as StreamOpener).finish());
    }
  });
  const h = header as ParsedHeader | null;
  if (!h || !opener) return fail("E_TRUNCATED", "stream ended inside the header");
  const length = (opener as StreamOpener).released;
  opts.onProgress?.(length, length);
  return { descriptor: h.descriptor, plaintextLength: length, generation: h.generation };
}

/**
 * Runs `body` between the input and the output; on success the output is ended (and has taken
 * everything), on failure both ends are destroyed with the error, as stream.pipeline did.
 */
async function run(
  input: Readable | number,
  inputOffset: number | undefined,
  output: Writable,
  pool: BufferPool | null,
  body: (source: PullSource, sink: PushSink) => Promise<void>,
): Promise<void> {
  const file = typeof input === "number" && inputOffset !== undefined;
  const source = (file && fileSource(input, inputOffset)) || pullSource(input);
  const sink = new PushSink(output, pool);
  try {
    await body(source, sink);
    await sink.end();
    source.close();
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    source.close();
    sink.fail(error);
    throw e;
  }
}

/** Both sealers (native batches, or format/payload.ts chunk by chunk) produce the same bytes. */
interface StreamSealer {
  readonly prefix: Buffer;
  /** Input bytes that complete the next chunk. */
  readonly wanted: number;
  /** It reads whole chunks only through the addon, so they may come from a mapping. */
  readonly mappable: boolean;
  /** The sealed chunks this input completes; see InFlight for how many may be pending. */
  push(plaintext: Buffer): Promise<Buffer[]>;
  finish(): Buffer[];
}

function streamSealer(
  inputKey: Uint8Array,
  context: Uint8Array,
  chunkSize: number,
  salt: Uint8Array,
  pool: BufferPool | null,
): StreamSealer {
  if (nativeGcm && !contextIsIntegrityOnly(context)) {
    const s = new NativeStreamSealer(nativeGcm, inputKey, context, chunkSize, salt);
    if (pool) s.alloc = (n) => pool.take(n);
    return {
      prefix: s.prefix,
      get wanted() {
        return s.wanted;
      },
      mappable: true,
      // A mapped input that shrank under the mapping: the addon's error, as the file paths say it.
      push: (b) => s.pushAsync(b).catch(mappedInputError),
      finish: () => s.finish(),
    };
  }
  const s = new PayloadSealer(inputKey, context, chunkSize, salt);
  let staged = 0;
  return {
    prefix: s.prefix,
    mappable: false,
    get wanted() {
      return chunkSize - staged;
    },
    push: async (b) => {
      staged = (staged + b.length) % chunkSize;
      return s.push(Buffer.from(b)); // it may keep the piece; the source reuses its buffer
    },
    finish: () => [s.finish()],
  };
}

/** Guards against a descriptor whose recorded length disagrees with the authenticated payload. */
function checkReleased(header: ParsedHeader, released: number, final: boolean): void {
  const recorded = header.descriptor.plaintextLength;
  if (recorded === null) return;
  if (released > recorded)
    fail("E_TRAILING", `payload holds more than the recorded ${recorded} bytes`);
  if (final && released < recorded) {
    fail("E_TRUNCATED", `payload holds ${released} bytes but the descriptor records ${recorded}`);
  }
}

/** Header length once the prefix has arrived (the prefix says how long the header is). */
function headerLengthIfKnown(pending: Buffer[]): number | null {
  // Collapse what arrived so far into one buffer; this runs only until the prefix is complete.
  const head = Buffer.concat(pending);
  pending.splice(0, pending.length, head);
  if (head.length >= PREFIX_SIZE) return parsePrefix(head).headerLength;
  checkMagicSoFar(head); // reject a foreign stream early, else wait for more bytes
  return null;
}

/** Both openers (native batches, or format/payload.ts chunk by chunk) release the same bytes. */
interface StreamOpener {
  /** Sealed bytes that complete the next chunk. */
  readonly wanted: number;
  /** Authenticated plaintext this input completes; see InFlight for how many may be pending. */
  push(sealed: Buffer): Promise<Buffer[]>;
  finish(): Buffer[];
  readonly released: number;
}

async function makeOpener(
  header: ParsedHeader,
  opts: StreamOpenOptions,
  pool: BufferPool | null,
): Promise<StreamOpener> {
  checkExpectedContext(header.descriptor, opts.expectContext);
  const fileKey = await unlockFileKey(header, opts.identities, opts);
  const inputKey = payloadInputKey(fileKey);
  fileKey.fill(0);
  const context = payloadContext(header.descriptorBytes);
  const { chunkSize } = header.descriptor;
  try {
    // Each opener keeps its own copy of the input key.
    if (nativeGcm && !contextIsIntegrityOnly(context)) {
      const o = new NativeStreamOpener(nativeGcm, inputKey, context, chunkSize);
      if (pool) o.alloc = (n) => pool.take(n);
      return {
        get wanted() {
          return o.wanted;
        },
        push: (b) => o.pushAsync(b),
        finish: () => o.finish(),
        get released() {
          return o.released;
        },
      };
    }
    const o = new PayloadOpener(inputKey, context, chunkSize);
    const sealedChunk = chunkSize + TAG_SIZE;
    let fed = 0;
    return {
      get wanted() {
        const after = fed - PAYLOAD_PREFIX_SIZE;
        return after < 0 ? sealedChunk - after : sealedChunk - (after % sealedChunk);
      },
      push: async (b) => {
        fed += b.length;
        return o.push(Buffer.from(b)); // it may keep the piece; the source reuses its buffer
      },
      finish: () => [o.finish()],
      get released() {
        return o.released;
      },
    };
  } finally {
    inputKey.fill(0);
  }
}

/**
 * The one input whose cipher work may still run while the next is read: submit() hands the
 * previous input's output on (in order) once the new input's work is under way, so at most two
 * are in flight at once and the source's two buffers are never both in use (stream-io.ts).
 */
class InFlight {
  private pending: Promise<Buffer[]> | null = null;

  async submit(next: Promise<Buffer[]>, hand: (out: Buffer[]) => Promise<void>): Promise<void> {
    next.catch(() => {}); // awaited below or on the next call; never an unhandled rejection
    const previous = this.pending;
    this.pending = next;
    if (previous) await hand(await previous);
  }

  async drain(hand: (out: Buffer[]) => Promise<void>): Promise<void> {
    const last = this.pending;
    if (last) await hand(await last);
    this.pending = null;
  }

  /** After a failure: waits until no work still uses the buffers. */
  async settle(): Promise<void> {
    await this.pending?.catch(() => {});
  }
}

function mappedInputError(e: unknown): never {
  if ((e as NodeJS.ErrnoException)?.code === "ERR_TSEAL_INPUT_CHANGED") inputChanged();
  throw e;
}

function quietly(fn: () => unknown): void {
  try {
    fn();
  } catch {
    // the pipeline already failed with the error that matters
  }
}
