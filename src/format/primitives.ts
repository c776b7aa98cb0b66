/**
 * The one-shot primitives of the format and the keys: HMAC-SHA-256/-512, SHA-256, AES-GCM of one
 * message, random bytes, a constant-time comparison and X25519. They come from the native addon
 * (native/tseal_prim.cc) when it loaded, else from node:crypto: the same OpenSSL, the one inside
 * the node binary, either way. The addon's are used so that a short seal or open never loads
 * node:crypto, whose 41 internal modules (and, on Node 24, Node's whole stream stack) cost about
 * 6 ms of a 1 KiB seal's CPU on Node 24 and 2.6 ms on Node 20 (issue 11; docs/DECISIONS.md).
 * test/format/primitives.test.ts holds both sets to Wycheproof's vectors and to each other.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  type KeyObject,
  randomBytes as nodeRandomBytes,
  timingSafeEqual,
} from "node:crypto";
import { missing, nativeAddon } from "./native-addon.js";

export const GCM_TAG_SIZE = 16;
const EMPTY = new Uint8Array(0);

export interface Primitives {
  /** HMAC(key, parts[0] || parts[1] || ...) with SHA-256 or SHA-512. */
  hmac(hash: "sha256" | "sha512", key: Uint8Array, ...parts: Uint8Array[]): Buffer;
  sha256(...parts: Uint8Array[]): Buffer;
  /**
   * AES-256-GCM (32-byte key; AES-128-GCM for a 16-byte one, which only HPKE's test vectors use),
   * 12-byte nonce: ciphertext || 16-byte tag.
   */
  gcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Buffer;
  /**
   * Opens gcmSeal's output: the plaintext, or null when it does not authenticate (wrong key,
   * nonce or AAD, modified, or shorter than a tag); nothing of the plaintext is returned then.
   */
  gcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Buffer | null;
  /** `n` bytes from OpenSSL's random generator. */
  randomBytes(n: number): Buffer;
  /** Constant-time equality of two byte strings; false (at once) when their lengths differ. */
  constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean;
  /**
   * X25519 (RFC 7748) of a 32-byte private and public key: the shared secret, or null when
   * OpenSSL refuses an all-zero one (a low-order public key, §6.1).
   */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Buffer | null;
  /** The public key of a 32-byte X25519 private key. */
  x25519PublicKey(privateKey: Uint8Array): Buffer;
}

/** RangeError unless `key` is 32 bytes (as the addon checks). */
function x25519Size(key: Uint8Array, name: string): void {
  if (key.length !== 32) throw new RangeError(`${name} must be 32 bytes`);
}

// SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.110 }, OCTET STRING { OCTET STRING (32) } }:
// node:crypto imports a raw X25519 private key only inside PKCS#8 (RFC 8410).
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");

function x25519PrivateKeyObject(privateKey: Uint8Array): KeyObject {
  x25519Size(privateKey, "privateKey");
  const der = Buffer.concat([X25519_PKCS8_PREFIX, privateKey]);
  try {
    return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  } finally {
    der.fill(0);
  }
}

const gcmName = (key: Uint8Array) => (key.length === 16 ? "aes-128-gcm" : "aes-256-gcm");

/** node:crypto's. */
export const nodeCryptoPrimitives: Primitives = {
  hmac(hash, key, ...parts) {
    const h = createHmac(hash, key);
    for (const p of parts) h.update(p);
    return h.digest();
  },
  sha256(...parts) {
    const h = createHash("sha256");
    for (const p of parts) h.update(p);
    return h.digest();
  },
  gcmSeal(key, nonce, plaintext, aad = EMPTY) {
    const c = createCipheriv(gcmName(key), key, nonce);
    if (aad.length > 0) c.setAAD(aad);
    const head = c.update(plaintext);
    const tail = c.final();
    return Buffer.concat([head, tail, c.getAuthTag()]);
  },
  gcmOpen(key, nonce, sealed, aad = EMPTY) {
    if (sealed.length < GCM_TAG_SIZE) return null;
    const n = sealed.length - GCM_TAG_SIZE;
    const d = createDecipheriv(gcmName(key), key, nonce);
    if (aad.length > 0) d.setAAD(aad);
    d.setAuthTag(sealed.subarray(n));
    const head = d.update(sealed.subarray(0, n));
    try {
      d.final();
    } catch {
      head.fill(0);
      return null;
    }
    return head;
  },
  randomBytes: (n) => nodeRandomBytes(n),
  constantTimeEqual: (a, b) => a.length === b.length && timingSafeEqual(a, b),
  x25519(privateKey, publicKey) {
    x25519Size(publicKey, "publicKey");
    const mine = x25519PrivateKeyObject(privateKey);
    // Public keys go in as JWK: it skips OpenSSL's DER decoder (~0.5 ms on first use).
    const x = Buffer.from(publicKey).toString("base64url");
    const theirs = createPublicKey({ key: { kty: "OKP", crv: "X25519", x }, format: "jwk" });
    try {
      return diffieHellman({ privateKey: mine, publicKey: theirs });
    } catch {
      return null; // OpenSSL refuses an all-zero result
    }
  },
  x25519PublicKey(privateKey) {
    const jwk = createPublicKey(x25519PrivateKeyObject(privateKey)).export({ format: "jwk" });
    return Buffer.from(jwk.x as string, "base64url");
  },
};

/** The addon's functions (native/tseal_prim.cc). */
interface Addon {
  hmac(bits: 256 | 512, key: Uint8Array, data: Uint8Array): Buffer;
  sha256(data: Uint8Array): Buffer;
  gcmSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Buffer;
  gcmOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Buffer | null;
  randomFill(buf: Uint8Array): void;
  equal(a: Uint8Array, b: Uint8Array): boolean;
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Buffer | null;
  x25519PublicKey(privateKey: Uint8Array): Buffer;
}

const ADDON_NAMES = [
  "hmac",
  "sha256",
  "gcmSeal",
  "gcmOpen",
  "randomFill",
  "equal",
  "x25519",
  "x25519PublicKey",
] as const;

/** `parts` as one buffer; the caller wipes it when it is not parts[0] itself. */
function joined(parts: readonly Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

function addonPrimitivesOf(a: Addon): Primitives {
  return {
    hmac(hash, key, ...parts) {
      const data = joined(parts);
      try {
        return a.hmac(hash === "sha256" ? 256 : 512, key, data);
      } finally {
        // The parts may be secret (HKDF-Expand feeds its previous output block back in).
        if (data !== parts[0]) data.fill(0);
      }
    },
    sha256: (...parts) => a.sha256(joined(parts)),
    gcmSeal: (key, nonce, plaintext, aad = EMPTY) => a.gcmSeal(key, nonce, aad, plaintext),
    gcmOpen: (key, nonce, sealed, aad = EMPTY) =>
      sealed.length < GCM_TAG_SIZE ? null : a.gcmOpen(key, nonce, aad, sealed),
    randomBytes(n) {
      // Memory of its own, never Buffer's shared pool: these bytes are keys and nonces.
      const out = Buffer.allocUnsafeSlow(n);
      a.randomFill(out);
      return out;
    },
    constantTimeEqual: (x, y) => a.equal(x, y),
    x25519: (privateKey, publicKey) => a.x25519(privateKey, publicKey),
    x25519PublicKey: (privateKey) => a.x25519PublicKey(privateKey),
  };
}

/** The addon's; null without the addon or with a build from before these functions. */
export const addonPrimitives: Primitives | null = (() => {
  const m = nativeAddon as Partial<Addon> | null;
  if (!m) return null;
  if (ADDON_NAMES.every((f) => typeof m[f] === "function")) return addonPrimitivesOf(m as Addon);
  return missing("it is an older build without the one-shot primitives");
})();

/** Which set serves this process. */
export const primitivesBackend: "native" | "node:crypto" = addonPrimitives
  ? "native"
  : "node:crypto";

const chosen = addonPrimitives ?? nodeCryptoPrimitives;
export const {
  hmac,
  sha256,
  gcmSeal,
  gcmOpen,
  randomBytes,
  constantTimeEqual,
  x25519,
  x25519PublicKey,
} = chosen;
