/**
 * Raw X25519 key handling over node:crypto: generation, public-key derivation, and KeyObjects
 * of raw keys. Keys travel as 32 raw bytes (RFC 7748). node:crypto takes a raw private key only
 * inside DER, so the fixed RFC 8410 PKCS#8 prefix is prepended to import one; public keys go in
 * and out as JWK, which skips OpenSSL's DER decoder and encoder (~0.5 ms each on first use).
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
import { fail } from "../format/errors.js";

export const X25519_KEY_SIZE = 32;
// SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.110 }, OCTET STRING { OCTET STRING (32) } }
const PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");

export interface RawKeyPair {
  readonly privateKey: Buffer;
  readonly publicKey: Buffer;
}

export function generateX25519KeyPair(): RawKeyPair {
  const { privateKey } = generateKeyPairSync("x25519");
  const jwk = privateKey.export({ format: "jwk" });
  return {
    privateKey: Buffer.from(jwk.d as string, "base64url"),
    publicKey: Buffer.from(jwk.x as string, "base64url"),
  };
}

/** The KeyObject of a raw private key (clamping is applied by X25519 itself). */
export function x25519PrivateKeyObject(privateKey: Uint8Array): KeyObject {
  if (privateKey.length !== X25519_KEY_SIZE) fail("E_KEY", "X25519 private key must be 32 bytes");
  const der = Buffer.concat([PKCS8_PREFIX, privateKey]);
  try {
    return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  } finally {
    der.fill(0);
  }
}

/** The KeyObject of a raw public key. */
export function x25519PublicKeyObject(publicKey: Uint8Array): KeyObject {
  if (publicKey.length !== X25519_KEY_SIZE) fail("E_KEY", "X25519 public key must be 32 bytes");
  const x = Buffer.from(publicKey).toString("base64url");
  return createPublicKey({ key: { kty: "OKP", crv: "X25519", x }, format: "jwk" });
}

/** The raw 32 bytes of an X25519 public KeyObject (or of the public half of a private one). */
export function rawX25519PublicKey(key: KeyObject): Buffer {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  return Buffer.from(publicKey.export({ format: "jwk" }).x as string, "base64url");
}

/** The public key of a raw private key. */
export function x25519PublicKey(privateKey: Uint8Array): Buffer {
  return rawX25519PublicKey(x25519PrivateKeyObject(privateKey));
}
