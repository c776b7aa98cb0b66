/**
 * Mapping between plaintext lengths, chunk indices and ciphertext offsets. There is exactly one
 * valid chunking per length: full chunks, then a final chunk strictly shorter than chunkSize
 * (possibly empty), so the final chunk authenticates the length.
 */
import { assertChunkSize, MAX_CHUNKS, PAYLOAD_PREFIX_SIZE, TAG_SIZE } from "./chunked.js";
import { fail } from "./errors.js";

export class PayloadGeometry {
  readonly sealedChunkSize: number;
  constructor(readonly chunkSize: number) {
    assertChunkSize(chunkSize);
    this.sealedChunkSize = chunkSize + TAG_SIZE;
  }

  /** Number of chunks for a plaintext length (always >= 1: the final short chunk). */
  chunkCount(plaintextLength: number): number {
    return Math.floor(plaintextLength / this.chunkSize) + 1;
  }

  /** Payload length (salt, commitment and chunks) for a plaintext length. */
  payloadLength(plaintextLength: number): number {
    const chunks = this.chunkCount(plaintextLength);
    if (chunks > MAX_CHUNKS) fail("E_UNSUPPORTED", "plaintext exceeds the 2^38 chunk limit");
    return PAYLOAD_PREFIX_SIZE + plaintextLength + chunks * TAG_SIZE;
  }

  /** Plaintext length for a payload length; rejects lengths no honest writer produces. */
  plaintextLength(payloadLength: number): number {
    const body = payloadLength - PAYLOAD_PREFIX_SIZE;
    if (body < TAG_SIZE) fail("E_TRUNCATED", "payload ends before the final chunk");
    const full = Math.floor(body / this.sealedChunkSize);
    const last = body - full * this.sealedChunkSize;
    // A remainder shorter than a tag means the final chunk is missing or cut (spec §4.4).
    if (last < TAG_SIZE) fail("E_TRUNCATED", "payload is truncated at a chunk boundary");
    return full * this.chunkSize + (last - TAG_SIZE);
  }

  /** Offset of sealed chunk k from the start of the payload. */
  chunkOffset(index: number): number {
    return PAYLOAD_PREFIX_SIZE + index * this.sealedChunkSize;
  }

  /** Plaintext length of chunk k in a message of the given length. */
  chunkPlaintextLength(index: number, plaintextLength: number): number {
    const last = this.chunkCount(plaintextLength) - 1;
    if (index < last) return this.chunkSize;
    if (index === last) return plaintextLength - last * this.chunkSize;
    return fail("E_USAGE", `chunk ${index} is past the end of the message`);
  }
}
