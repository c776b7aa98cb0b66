/**
 * Raw X25519 key handling over node:crypto: generation and public-key derivation. Keys travel
 * as 32 raw bytes (RFC 7748); node:crypto wants DER, so the fixed RFC 8410 PKCS#8 prefix is
 * prepended to import a raw private key.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
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

/** The public key of a raw private key (clamping is applied by X25519 itself). */
export function x25519PublicKey(privateKey: Uint8Array): Buffer {
  if (privateKey.length !== X25519_KEY_SIZE) fail("E_KEY", "X25519 private key must be 32 bytes");
  const der = Buffer.concat([PKCS8_PREFIX, privateKey]);
  try {
    const key = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
    const jwk = createPublicKey(key).export({ format: "jwk" });
    return Buffer.from(jwk.x as string, "base64url");
  } finally {
    der.fill(0);
  }
}
