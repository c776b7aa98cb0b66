/**
 * The payload construction of C2SP chunked-encryption ("Cobblestone") with AES-256-GCM and
 * HKDF-Expand-SHA-512 (spec/FORMAT.md §4). With 16 KiB chunks this is Cobblestone-256 byte for
 * byte; any other chunk size is a distinct variant whose size is part of the derivation label.
 */
import { createCipheriv, createDecipheriv, timingSafeEqual } from "node:crypto";
import { fail } from "./errors.js";
import { hkdfExpand } from "./hkdf.js";

export const AEAD_NAME = "AEAD_AES_256_GCM";
export const KEY_SIZE = 32;
export const NONCE_SIZE = 12;
export const TAG_SIZE = 16;
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
  };
}

/** Constant-time check of the commitment; done before any chunk is decrypted. */
export function checkCommitment(keys: ChunkKeys, stored: Uint8Array): void {
  if (stored.length !== COMMITMENT_SIZE || !timingSafeEqual(keys.commitment, stored)) {
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

/** Seals one chunk; returns ciphertext || tag. */
export function sealChunk(keys: ChunkKeys, index: number, plaintext: Uint8Array): Buffer {
  const cipher = createCipheriv("aes-256-gcm", keys.aeadKey, chunkNonce(keys.baseNonce, index));
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  return Buffer.concat([head, tail, cipher.getAuthTag()]);
}

/** Opens one chunk (ciphertext || tag). Every failure is the same error: no oracle. */
export function openChunk(keys: ChunkKeys, index: number, sealed: Uint8Array): Buffer {
  if (sealed.length < TAG_SIZE) fail("E_TRUNCATED", `chunk ${index} is shorter than its tag`);
  const ctLen = sealed.length - TAG_SIZE;
  const decipher = createDecipheriv("aes-256-gcm", keys.aeadKey, chunkNonce(keys.baseNonce, index));
  decipher.setAuthTag(sealed.subarray(ctLen));
  try {
    const head = decipher.update(sealed.subarray(0, ctLen));
    const tail = decipher.final();
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch {
    return fail("E_DECRYPT", `chunk ${index} failed authentication: the file was modified`);
  }
}
