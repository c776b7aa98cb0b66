/**
 * Raw X25519 keys (RFC 7748: 32 bytes each): generation, public-key derivation and the shared
 * secret, over src/format/primitives.ts (the native addon's OpenSSL, else node:crypto's), so a
 * seal to a recipient or an open with an identity need not load node:crypto (issue 11).
 */
import { fail } from "../format/errors.js";
import { x25519PublicKey as publicKeyOf, randomBytes, x25519 } from "../format/primitives.js";

export const X25519_KEY_SIZE = 32;

export interface RawKeyPair {
  readonly privateKey: Buffer;
  readonly publicKey: Buffer;
}

/** A fresh key pair: 32 random bytes are a private key (X25519 clamps them itself). */
export function generateX25519KeyPair(): RawKeyPair {
  const privateKey = randomBytes(X25519_KEY_SIZE);
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

/** E_KEY unless `key` is 32 bytes. */
function checkSize(key: Uint8Array, what: "private" | "public"): void {
  if (key.length !== X25519_KEY_SIZE) fail("E_KEY", `X25519 ${what} key must be 32 bytes`);
}

/** The public key of a raw private key. */
export function x25519PublicKey(privateKey: Uint8Array): Buffer {
  checkSize(privateKey, "private");
  return publicKeyOf(privateKey);
}

/** X25519(privateKey, publicKey), or null for a low-order public key (an all-zero secret). */
export function x25519SharedSecret(privateKey: Uint8Array, publicKey: Uint8Array): Buffer | null {
  checkSize(privateKey, "private");
  checkSize(publicKey, "public");
  return x25519(privateKey, publicKey);
}
