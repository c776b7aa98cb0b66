/**
 * HPKE's primitives from OpenSSL, synchronously, for the `hpke` library's CipherSuite:
 * DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and AES-GCM, through the KEM, KDF and AEAD interfaces
 * the library documents for outside implementations. The protocol itself (key schedule, labels,
 * nonces, sequence numbers, error mapping) stays the library's. OpenSSL is reached through
 * src/format/primitives.ts: the native addon's calls, else node:crypto's. The KDF and AEAD also
 * serve the X-Wing suite (hpke-xwing.ts).
 *
 * Why not the library's own: they go through WebCrypto, where every call is a thread-pool job
 * and a promise; an HPKE seal cost 10.5-11.8 ms of a process's CPU that way (as @hpke/core's
 * suite, which this replaced), 2.4 ms this way (issue 11, docs/BENCHMARKS.md).
 */
import {
  type AEADFactory,
  CipherSuite,
  concat,
  encode,
  I2OSP,
  type KDF,
  type KDFFactory,
  type KEM,
  type KEMFactory,
  type Key,
  type KeyPair,
  LabeledExpand,
  LabeledExtract,
  ValidationError,
} from "hpke";
import { hkdfExpand, hkdfExtract } from "../format/hkdf.js";
import { GCM_TAG_SIZE, gcmOpen, gcmSeal, randomBytes } from "../format/primitives.js";
import {
  generateX25519KeyPair,
  X25519_KEY_SIZE,
  x25519PublicKey,
  x25519SharedSecret,
} from "./x25519-key.js";

const SHA256_SIZE = 32;

/** HKDF-SHA256 (RFC 5869) over OpenSSL's HMAC: src/format/hkdf.ts, the format's own. */
export const KDF_HKDF_SHA256: KDFFactory = (): KDF => ({
  id: 0x0001,
  type: "KDF",
  name: "HKDF-SHA256",
  Nh: SHA256_SIZE,
  stages: 2,
  async Extract(salt, ikm) {
    return hkdfExtract("sha256", salt, ikm);
  },
  async Expand(prk, info, L) {
    return hkdfExpand("sha256", prk, info, L);
  },
  async Derive() {
    throw new TypeError("HKDF-SHA256 is a two-stage KDF");
  },
});

function aesGcm(id: number, keySize: 16 | 32): AEADFactory {
  return () => ({
    id,
    type: "AEAD",
    name: `AES-${keySize * 8}-GCM`,
    Nk: keySize,
    Nn: 12,
    Nt: GCM_TAG_SIZE,
    async Seal(key, nonce, aad, pt) {
      if (key.length !== keySize) throw new RangeError(`AES-${keySize * 8}-GCM key size`);
      return gcmSeal(key, nonce, pt, aad);
    },
    async Open(key, nonce, aad, ct) {
      if (key.length !== keySize) throw new RangeError(`AES-${keySize * 8}-GCM key size`);
      if (ct.length < GCM_TAG_SIZE) throw new RangeError("ciphertext shorter than its tag");
      // The plaintext is returned only once the tag authenticates it.
      const pt = gcmOpen(key, nonce, ct, aad);
      if (!pt) throw new Error("AES-GCM: the ciphertext does not authenticate");
      return pt;
    },
  });
}

export const AEAD_AES_128_GCM = aesGcm(0x0001, 16);
export const AEAD_AES_256_GCM = aesGcm(0x0002, 32);

const X25519 = "X25519";

/**
 * A key of this KEM as the suite sees it: its 32 raw bytes, a copy of its own (a private key's
 * are as secret as the identity file they came from). Made only here; the suite rejects any
 * other key.
 */
class X25519Key implements Key {
  readonly algorithm = { name: X25519 };
  readonly raw: Buffer;
  constructor(
    readonly type: "public" | "private",
    readonly extractable: boolean,
    raw: Uint8Array,
  ) {
    this.raw = Buffer.from(raw);
  }
}

function ours(key: Key, type: "public" | "private"): X25519Key {
  if (!(key instanceof X25519Key) || key.type !== type) {
    throw new TypeError(`not an X25519 ${type} key of this suite`);
  }
  return key;
}

function publicKey(raw: Uint8Array): X25519Key {
  if (raw.length !== X25519_KEY_SIZE) throw new RangeError("X25519 public key must be 32 bytes");
  return new X25519Key("public", true, raw);
}

function privateKey(raw: Uint8Array, extractable: boolean): X25519Key {
  if (raw.length !== X25519_KEY_SIZE) throw new RangeError("X25519 private key must be 32 bytes");
  return new X25519Key("private", extractable, raw);
}

/**
 * The suite's (non-extractable) key pair of a raw X25519 private key: an identity makes it once
 * and opens with the pair, so no open derives the public key again.
 */
export function x25519KeyPair(raw: Uint8Array): KeyPair {
  const pk = publicKey(x25519PublicKey(raw)); // E_KEY for a key of the wrong size
  return { privateKey: privateKey(raw, false), publicKey: pk };
}

/** The 32 raw bytes of a public key of this KEM. */
export function x25519PublicKeyBytes(key: Key): Buffer {
  return Buffer.from(ours(key, "public").raw);
}

export interface X25519KemOptions {
  /** A fixed ephemeral private key for every Encap: deterministic test vectors only. */
  readonly ephemeralPrivateKey?: Uint8Array;
}

/** DHKEM(X25519, HKDF-SHA256) (RFC 9180 §4.1, KEM id 0x0020) with X25519 from OpenSSL. */
export function kemX25519(opts: X25519KemOptions = {}): KEMFactory {
  const id = 0x0020;
  const kdf = KDF_HKDF_SHA256();
  const suiteId = concat(encode("KEM"), I2OSP(id, 2));

  // ExtractAndExpand (RFC 9180 §4.1), with the library's labeled KDF calls.
  async function sharedSecret(
    dh: Buffer | null,
    enc: Uint8Array,
    pkRm: Uint8Array,
  ): Promise<Uint8Array> {
    // An all-zero DH output means a low-order public key (RFC 9180 §7.1.4): refuse it. OpenSSL
    // refuses it already (null); checked again here, reading every byte, so the time taken says
    // nothing about the secret.
    let any = 0;
    for (const b of dh ?? []) any |= b;
    if (!dh || any === 0) throw new ValidationError("DH shared secret is all zero");
    const eaePrk = await LabeledExtract(kdf, suiteId, new Uint8Array(0), encode("eae_prk"), dh);
    const kemContext = concat(enc, pkRm);
    return LabeledExpand(kdf, suiteId, eaePrk, encode("shared_secret"), kemContext, 32);
  }

  const kem: KEM = {
    id,
    type: "KEM",
    name: "DHKEM(X25519, HKDF-SHA256)",
    Nsecret: 32,
    Nenc: X25519_KEY_SIZE,
    Npk: X25519_KEY_SIZE,
    Nsk: X25519_KEY_SIZE,
    async DeriveKeyPair(ikm, extractable) {
      const prk = await LabeledExtract(kdf, suiteId, new Uint8Array(0), encode("dkp_prk"), ikm);
      const sk = await LabeledExpand(kdf, suiteId, prk, encode("sk"), new Uint8Array(0), 32);
      try {
        return {
          privateKey: privateKey(sk, extractable),
          publicKey: publicKey(x25519PublicKey(sk)),
        };
      } finally {
        sk.fill(0);
      }
    },
    async GenerateKeyPair(extractable) {
      const pair = generateX25519KeyPair();
      try {
        return {
          privateKey: privateKey(pair.privateKey, extractable),
          publicKey: publicKey(pair.publicKey),
        };
      } finally {
        pair.privateKey.fill(0);
      }
    },
    async SerializePublicKey(key) {
      return x25519PublicKeyBytes(key);
    },
    async DeserializePublicKey(key) {
      return publicKey(key);
    },
    async SerializePrivateKey(key) {
      const k = ours(key, "private");
      if (!k.extractable) throw new TypeError("the private key is not extractable");
      return Buffer.from(k.raw);
    },
    async DeserializePrivateKey(key, extractable) {
      return privateKey(key, extractable);
    },
    async Encap(pkR) {
      const recipient = ours(pkR, "public");
      const skE = opts.ephemeralPrivateKey ?? randomBytes(X25519_KEY_SIZE);
      try {
        const enc = x25519PublicKey(skE);
        const dh = x25519SharedSecret(skE, recipient.raw);
        try {
          return { shared_secret: await sharedSecret(dh, enc, recipient.raw), enc };
        } finally {
          dh?.fill(0);
        }
      } finally {
        if (skE !== opts.ephemeralPrivateKey) skE.fill(0);
      }
    },
    async Decap(enc, skR, pkR) {
      const sk = ours(skR, "private");
      const pkRm = pkR ? ours(pkR, "public").raw : x25519PublicKey(sk.raw);
      const dh = x25519SharedSecret(sk.raw, enc);
      try {
        return await sharedSecret(dh, enc, pkRm);
      } finally {
        dh?.fill(0);
      }
    },
  };
  return () => kem;
}

/** HPKE's DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM: the x25519 stanza's suite. */
export function x25519Suite(opts: X25519KemOptions = {}): CipherSuite {
  return new CipherSuite(kemX25519(opts), KDF_HKDF_SHA256, AEAD_AES_256_GCM);
}
