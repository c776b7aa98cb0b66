/**
 * The payload construction of C2SP chunked-encryption ("Cobblestone") with AES-256-GCM and
 * HKDF-Expand-SHA-512 (spec/FORMAT.md §4). With 16 KiB chunks this is Cobblestone-256 byte for
 * byte; any other chunk size is a distinct variant whose size is part of the derivation label.
 */
import { fail } from "./errors.js";
import { hkdfExpand } from "./hkdf.js";
import { constantTimeEqual, gcmOpen, gcmSeal } from "./primitives.js";

export const AEAD_NAME = "AEAD_AES_256_GCM";
export const KEY_SIZE = 32;
export const NONCE_SIZE = 12;
export const TAG_SIZE = 16;
const EMPTY = new Uint8Array(0);
export const SALT_SIZE = 24;
export const COMMITMENT_SIZE = 32;
/** salt || commitment, prepended to the chunk ciphertexts. */
export const PAYLOAD_PREFIX_SIZE = SALT_SIZE + COMMITMENT_SIZE;
export const COBBLESTONE_CHUNK_SIZE = 16384;
export const MIN_CHUNK_LOG2 = 14;
export const MAX_CHUNK_LOG2 = 24;
/** Cobblestone's counter limit: the nonce XOR covers 38 bits. */
export const MAX_CHUNKS = 2 ** 38;

export interface ChunkKeys {
  readonly aeadKey: Buffer;
  readonly baseNonce: Buffer;
  readonly commitment: Buffer;
  /**
   * Suite 2 (spec §2.5): chunks are plaintext || GMAC tag, not ciphertext. Read from the
   * descriptor bound in the context, so every caller of deriveChunkKeys gets the right mode.
   */
  readonly integrityOnly?: boolean;
}

const DESCRIPTOR_CONTEXT_LABEL = Buffer.from("tensorseal.dev/v1 descriptor\0", "ascii");

/**
 * Whether a payload context (payloadContext: label || descriptor bytes) names suite 2. The
 * descriptor's first field is its u16 suite; contexts of other shapes (the Cobblestone
 * Wycheproof vectors) are plain chunked encryption.
 */
export function contextIsIntegrityOnly(context: Uint8Array): boolean {
  const n = DESCRIPTOR_CONTEXT_LABEL.length;
  if (context.length < n + 2) return false;
  if (!Buffer.from(context.buffer, context.byteOffset, n).equals(DESCRIPTOR_CONTEXT_LABEL)) {
    return false;
  }
  return context[n] === 0 && context[n + 1] === 2;
}

/** The derivation label; 16 KiB keeps C2SP's own label so the Wycheproof vectors apply. */
export function derivationLabel(chunkSize: number): string {
  assertChunkSize(chunkSize);
  if (chunkSize === COBBLESTONE_CHUNK_SIZE) return "c2sp.org/chunked-encryption@v1+";
  return `tensorseal.dev/chunked-encryption@v1/chunk-size=${chunkSize}+`;
}

export function assertChunkSize(chunkSize: number): void {
  const log2 = Math.log2(chunkSize);
  if (!Number.isInteger(log2) || log2 < MIN_CHUNK_LOG2 || log2 > MAX_CHUNK_LOG2) {
    fail("E_UNSUPPORTED", `chunk size ${chunkSize} is not a power of two from 16 KiB to 16 MiB`);
  }
}

/** key || base nonce || commitment = HKDF-Expand(input key, label || aead || 0x00 || salt || ctx) */
export function deriveChunkKeys(
  inputKey: Uint8Array,
  salt: Uint8Array,
  context: Uint8Array,
  chunkSize: number,
): ChunkKeys {
  if (inputKey.length !== KEY_SIZE) {
    fail("E_KEY", `payload key must be ${KEY_SIZE} bytes, got ${inputKey.length}`);
  }
  if (salt.length !== SALT_SIZE) fail("E_MALFORMED", `salt must be ${SALT_SIZE} bytes`);
  const info = Buffer.concat([
    Buffer.from(derivationLabel(chunkSize), "ascii"),
    Buffer.from(AEAD_NAME, "ascii"),
    Buffer.from([0]),
    salt,
    context,
  ]);
  const okm = hkdfExpand("sha512", inputKey, info, KEY_SIZE + NONCE_SIZE + COMMITMENT_SIZE);
  return {
    aeadKey: okm.subarray(0, KEY_SIZE),
    baseNonce: okm.subarray(KEY_SIZE, KEY_SIZE + NONCE_SIZE),
    commitment: okm.subarray(KEY_SIZE + NONCE_SIZE),
    ...(contextIsIntegrityOnly(context) ? { integrityOnly: true } : {}),
  };
}

/** Constant-time check of the commitment; done before any chunk is decrypted. */
export function checkCommitment(keys: ChunkKeys, stored: Uint8Array): void {
  if (stored.length !== COMMITMENT_SIZE || !constantTimeEqual(keys.commitment, stored)) {
    fail("E_COMMITMENT", "key commitment mismatch: wrong key or encryption context");
  }
}

/**
 * The chunk keys of a payload whose prefix (salt || commitment) is `prefix`, after its
 * commitment is checked; nothing is left in memory when the check fails.
 */
export function keysForPrefix(
  inputKey: Uint8Array,
  prefix: Uint8Array,
  context: Uint8Array,
  chunkSize: number,
): ChunkKeys {
  const keys = deriveChunkKeys(inputKey, prefix.subarray(0, SALT_SIZE), context, chunkSize);
  try {
    checkCommitment(keys, prefix.subarray(SALT_SIZE));
  } catch (e) {
    wipeChunkKeys(keys);
    throw e;
  }
  return keys;
}

export function wipeChunkKeys(keys: ChunkKeys): void {
  keys.aeadKey.fill(0);
  keys.baseNonce.fill(0);
  keys.commitment.fill(0);
}

/** nonce = base nonce XOR k, k big-endian in the low 38 bits (unique per chunk index). */
export function chunkNonce(
  baseNonce: Buffer,
  index: number,
  out = Buffer.alloc(NONCE_SIZE),
): Buffer {
  if (!Number.isSafeInteger(index) || index < 0 || index >= MAX_CHUNKS) {
    fail("E_UNSUPPORTED", `chunk index ${index} exceeds the 2^38 chunk limit`);
  }
  baseNonce.copy(out);
  // 38-bit counter: low 32 bits into bytes 8..11, the high 6 bits into byte 7.
  out.writeUInt32BE((out.readUInt32BE(8) ^ (index % 2 ** 32)) >>> 0, 8);
  out[7] = out[7]! ^ Math.floor(index / 2 ** 32);
  return out;
}

/** Seals one chunk; returns ciphertext || tag (suite 2: plaintext || GMAC tag). */
export function sealChunk(keys: ChunkKeys, index: number, plaintext: Uint8Array): Buffer {
  if (keys.integrityOnly) return tagChunk(keys, index, plaintext);
  return gcmSeal(keys.aeadKey, chunkNonce(keys.baseNonce, index), plaintext);
}

/** Opens one chunk (ciphertext || tag). Every failure is the same error: no oracle. */
export function openChunk(keys: ChunkKeys, index: number, sealed: Uint8Array): Buffer {
  if (sealed.length < TAG_SIZE) fail("E_TRUNCATED", `chunk ${index} is shorter than its tag`);
  if (keys.integrityOnly) return checkChunk(keys, index, sealed);
  return (
    gcmOpen(keys.aeadKey, chunkNonce(keys.baseNonce, index), sealed) ??
    fail("E_DECRYPT", `chunk ${index} failed authentication: the file was modified`)
  );
}

/**
 * Suite 2: tag_k = GMAC = AES-256-GCM(aeadKey, nonce_k, P = empty, A = plaintext_k); the chunk
 * is plaintext_k || tag_k (same length as a suite-1 chunk, so geometry and length rules hold).
 */
export function chunkTag(keys: ChunkKeys, index: number, plaintext: Uint8Array): Buffer {
  return gcmSeal(keys.aeadKey, chunkNonce(keys.baseNonce, index), EMPTY, plaintext);
}

function tagChunk(keys: ChunkKeys, index: number, plaintext: Uint8Array): Buffer {
  return Buffer.concat([plaintext, chunkTag(keys, index, plaintext)]);
}

/** Verifies a suite-2 chunk (constant time) and returns its plaintext (a view of `sealed`). */
function checkChunk(keys: ChunkKeys, index: number, sealed: Uint8Array): Buffer {
  const n = sealed.length - TAG_SIZE;
  const body = Buffer.from(sealed.buffer, sealed.byteOffset, n);
  const tag = sealed.subarray(n);
  if (!gcmOpen(keys.aeadKey, chunkNonce(keys.baseNonce, index), tag, body)) {
    return fail("E_DECRYPT", `chunk ${index} failed its integrity check: the file was modified`);
  }
  return body;
}
