/** What the native stream opener and sealer tests feed both their code and the reference. */
import { PayloadSealer } from "../../src/format/payload.js";

/** `buf` in pieces of varying sizes (a fixed stepper, so a failure repeats). */
export function* pieces(buf: Buffer, seed: number): Generator<Buffer> {
  let step = seed;
  for (let i = 0; i < buf.length; ) {
    step = (step * 7 + 13) % 300_001 || 1;
    yield buf.subarray(i, i + step);
    i += step;
  }
}

/**
 * The plaintext lengths worth trying at `chunkSize`: empty, one byte, either side of a chunk
 * and of a batch (the whole chunks that fit in `batchBytes`), and past two batches.
 */
export function boundaryLengths(chunkSize: number, batchBytes: number): number[] {
  const batch = Math.floor(batchBytes / chunkSize) * chunkSize;
  return [
    0,
    1,
    chunkSize - 1,
    chunkSize,
    chunkSize + 1,
    batch - 1,
    batch,
    batch + 1,
    2 * batch + chunkSize + 3,
  ];
}

/** The reference (format/payload.ts) payload of `plain`: prefix, sealed chunks, final chunk. */
export function referencePayload(
  inputKey: Buffer,
  context: Buffer,
  chunkSize: number,
  salt: Buffer,
  plain: Buffer,
): Buffer {
  const s = new PayloadSealer(inputKey, context, chunkSize, salt);
  return Buffer.concat([s.prefix, ...s.push(plain), s.finish()]);
}
