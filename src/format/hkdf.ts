/**
 * HKDF's two steps (RFC 5869 §2.2, §2.3) over OpenSSL's HMAC (./primitives.ts). Cobblestone expands a 32-byte
 * input key with SHA-512, and HPKE's key schedule calls the steps apart (src/keys/hpke-node.ts);
 * @noble/hashes 2.x refuses a PRK shorter than HashLen and node:crypto only offers
 * extract-then-expand, so these are the RFC's definitions, checked against Wycheproof's HKDF
 * vectors in test/format/wycheproof-primitives.test.ts.
 */
import { fail } from "./errors.js";
import { hmac } from "./primitives.js";

const HASH_LEN = { sha256: 32, sha512: 64 } as const;

/**
 * HKDF-Extract: HMAC(salt, ikm). An empty salt stands for HashLen zero bytes, which HMAC's key
 * padding makes the same key.
 */
export function hkdfExtract(
  hash: keyof typeof HASH_LEN,
  salt: Uint8Array,
  ikm: Uint8Array,
): Buffer {
  return hmac(hash, salt, ikm);
}

export function hkdfExpand(
  hash: keyof typeof HASH_LEN,
  prk: Uint8Array,
  info: Uint8Array,
  length: number,
): Buffer {
  const n = Math.ceil(length / HASH_LEN[hash]);
  if (n > 255) fail("E_USAGE", `HKDF-Expand length ${length} too large`);
  const blocks: Buffer[] = [];
  let prev: Buffer = Buffer.alloc(0);
  for (let i = 1; i <= n; i++) {
    prev = hmac(hash, prk, prev, info, Buffer.from([i]));
    blocks.push(prev);
  }
  const okm = Buffer.concat(blocks);
  const out = Buffer.from(okm.subarray(0, length));
  okm.fill(0);
  return out;
}
