/**
 * Streaming seal and open for pipes (stdin/stdout): single-threaded, bounded memory (a sealing
 * batch of about 8 MiB with the addon, else one chunk, plus up to 16 MiB of output waiting for a
 * slow consumer, plus the stream buffers), backpressure through stream.pipeline. A sealed
 * stream records no plaintext length (the final short chunk still authenticates where it ends).
 * openStream releases each chunk's plaintext only after that chunk authenticated, but a consumer
 * may have received earlier chunks before a later failure (truncation, tampering) rejects the
 * promise: whoever needs all-or-nothing must use openFile, or discard the output on rejection.
 */
import { PassThrough, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { encodeDescriptor } from "../format/descriptor.js";
import { fail } from "../format/errors.js";
import { payloadInputKey } from "../format/filekey.js";
import { PayloadGeometry } from "../format/geometry.js";
import { type ParsedHeader, PREFIX_SIZE, parseHeader, parsePrefix } from "../format/header.js";
import { makeDescriptor } from "../format/message.js";
import { PayloadOpener, PayloadSealer, payloadContext } from "../format/payload.js";
import { unlockFileKey } from "../format/unlock.js";
import { nativeGcm } from "./native-gcm.js";
import type { OpenResult, SealResult, StreamOpenOptions, StreamSealOptions } from "./options.js";
import { Progress } from "./progress.js";
import { prepareHeader } from "./seal-header.js";
import { checkExpectedContext, checkMagicSoFar, rejectShortHeader } from "./sealed-header.js";
import { NativeStreamOpener } from "./stream-opener.js";
import { NativeStreamSealer } from "./stream-sealer.js";

type Piece = Buffer | string;
const asBuffer = (p: Piece) => (typeof p === "string" ? Buffer.from(p) : p);

export async function sealStream(
  input: Readable,
  output: Writable,
  opts: StreamSealOptions,
): Promise<SealResult & { plaintextLength: number }> {
  const descriptor = makeDescriptor(opts, null);
  const descriptorBytes = encodeDescriptor(descriptor);
  const { header, inputKey, salt } = await prepareHeader(opts, descriptorBytes);
  const sealer = streamSealer(
    inputKey,
    payloadContext(descriptorBytes),
    descriptor.chunkSize,
    salt,
  );
  inputKey.fill(0);
  const progress = new Progress(0, opts.onProgress);
  let finished = false;
  try {
    await pipeline(
      input,
      async function* (source: AsyncIterable<Piece>) {
        yield Buffer.concat([header, sealer.prefix]);
        for await (const piece of source) {
          const b = asBuffer(piece);
          progress.add(b.length);
          yield* sealer.push(b);
        }
        finished = true;
        yield* sealer.finish();
      },
      outputBuffer(),
      output,
    );
  } finally {
    progress.stop(false);
    // finish() is what wipes the sealer's keys; after a failure call it for that alone.
    if (!finished) quietly(() => sealer.finish());
  }
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
  input: Readable,
  output: Writable,
  opts: StreamOpenOptions,
): Promise<OpenResult> {
  let header: ParsedHeader | null = null;
  let opener: StreamOpener | null = null;
  let finished = false;
  const progress = new Progress(0, opts.onProgress);
  try {
    await pipeline(
      input,
      async function* (source: AsyncIterable<Piece>) {
        const pending: Buffer[] = [];
        let pendingLength = 0;
        let need: number | null = null;
        for await (const piece of source) {
          const b = asBuffer(piece);
          if (opener) {
            yield* release(opener.push(b));
            continue;
          }
          pending.push(b);
          pendingLength += b.length;
          need ??= headerLengthIfKnown(pending);
          if (need === null || pendingLength < need) continue;
          const all = Buffer.concat(pending);
          pending.length = 0;
          header = parseHeader(all.subarray(0, need));
          opener = await makeOpener(header, opts);
          yield* release(opener.push(all.subarray(need)));
        }
        if (!opener) return rejectShortHeader(Buffer.concat(pending));
        const last = opener.finish();
        finished = true;
        checkReleased(header!, opener.released, true);
        for (const p of last) {
          progress.add(p.length);
          yield p;
        }
      },
      outputBuffer(),
      output,
    );
  } finally {
    progress.stop(false);
    // An unfinished opener wipes its keys when finish() fails; call it for that alone.
    if (opener && !finished) quietly(() => (opener as StreamOpener).finish());
  }
  const h = header as ParsedHeader | null;
  if (!h || !opener) return fail("E_TRUNCATED", "stream ended inside the header");
  const length = (opener as StreamOpener).released;
  opts.onProgress?.(length, length);
  return { descriptor: h.descriptor, plaintextLength: length, generation: h.generation };

  function* release(parts: Buffer[]): Generator<Buffer> {
    for (const p of parts) {
      checkReleased(header!, opener!.released, false);
      progress.add(p.length);
      yield p;
    }
  }
}

/** Both sealers (native batches, or format/payload.ts chunk by chunk) produce the same bytes. */
interface StreamSealer {
  readonly prefix: Buffer;
  push(plaintext: Buffer): Buffer[];
  finish(): Buffer[];
}

function streamSealer(
  inputKey: Uint8Array,
  context: Uint8Array,
  chunkSize: number,
  salt: Uint8Array,
): StreamSealer {
  if (nativeGcm) return new NativeStreamSealer(nativeGcm, inputKey, context, chunkSize, salt);
  const s = new PayloadSealer(inputKey, context, chunkSize, salt);
  return { prefix: s.prefix, push: (b) => s.push(b), finish: () => [s.finish()] };
}

/**
 * Up to this much output waits for a slow consumer while the input goes on being read and
 * processed. Without it the pipeline took turns: nothing was read while a chunk drained into a
 * pipe (measured: 1 GiB sealed between two `cat`s in 2.65 s, 1.55 s with it).
 */
const OUTPUT_AHEAD_BYTES = 16 << 20;

function outputBuffer(): PassThrough {
  return new PassThrough({ highWaterMark: OUTPUT_AHEAD_BYTES });
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
  push(sealed: Buffer): Buffer[];
  finish(): Buffer[];
  readonly released: number;
}

async function makeOpener(header: ParsedHeader, opts: StreamOpenOptions): Promise<StreamOpener> {
  checkExpectedContext(header.descriptor, opts.expectContext);
  const fileKey = await unlockFileKey(header, opts.identities);
  const inputKey = payloadInputKey(fileKey);
  fileKey.fill(0);
  const context = payloadContext(header.descriptorBytes);
  const { chunkSize } = header.descriptor;
  try {
    // Each opener keeps its own copy of the input key.
    if (nativeGcm) return new NativeStreamOpener(nativeGcm, inputKey, context, chunkSize);
    const o = new PayloadOpener(inputKey, context, chunkSize);
    return {
      push: (b) => o.push(b),
      finish: () => [o.finish()],
      get released() {
        return o.released;
      },
    };
  } finally {
    inputKey.fill(0);
  }
}

function quietly(fn: () => unknown): void {
  try {
    fn();
  } catch {
    // the pipeline already failed with the error that matters
  }
}
