/**
 * HPKE's primitives from node:crypto (OpenSSL) for the `hpke` library's CipherSuite:
 * DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and AES-GCM, through the KEM, KDF and AEAD interfaces
 * the library documents for outside implementations. The protocol itself (key schedule, labels,
 * nonces, sequence numbers, error mapping) stays the library's. The KDF and AEAD also serve the
 * X-Wing suite (hpke-xwing.ts).
 *
 * Why not the library's own: they go through WebCrypto, where every call is a thread-pool job
 * and a promise; an HPKE seal cost 10.5-11.8 ms of a process's CPU that way (as @hpke/core's
 * suite, which this replaced), 2.4 ms this way (issue 11, docs/BENCHMARKS.md).
 */
import {
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
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
import {
  rawX25519PublicKey,
  X25519_KEY_SIZE,
  x25519PrivateKeyObject,
  x25519PublicKeyObject,
} from "./x25519-key.js";

const SHA256_SIZE = 32;
const GCM_TAG_SIZE = 16;

/** HKDF-SHA256 (RFC 5869) over node:crypto's HMAC: src/format/hkdf.ts, the format's own. */
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
  const cipher = keySize === 16 ? "aes-128-gcm" : "aes-256-gcm";
  return () => ({
    id,
    type: "AEAD",
    name: `AES-${keySize * 8}-GCM`,
    Nk: keySize,
    Nn: 12,
    Nt: GCM_TAG_SIZE,
    async Seal(key, nonce, aad, pt) {
      const c = createCipheriv(cipher, key, nonce, { authTagLength: GCM_TAG_SIZE });
      c.setAAD(aad);
      return Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]); // the tag after final()
    },
    async Open(key, nonce, aad, ct) {
      if (ct.length < GCM_TAG_SIZE) throw new RangeError("ciphertext shorter than its tag");
      const d = createDecipheriv(cipher, key, nonce, { authTagLength: GCM_TAG_SIZE });
      d.setAAD(aad);
      d.setAuthTag(ct.subarray(ct.length - GCM_TAG_SIZE));
      const pt = d.update(ct.subarray(0, ct.length - GCM_TAG_SIZE));
      d.final(); // throws on a bad tag: the plaintext is returned only once it authenticates
      return pt;
    },
  });
}

export const AEAD_AES_128_GCM = aesGcm(0x0001, 16);
export const AEAD_AES_256_GCM = aesGcm(0x0002, 32);

const X25519 = "X25519";

/**
 * A key of this KEM as the suite sees it: a KeyObject, and for public keys their 32 raw bytes
 * (the KEM context needs them). Made only here; the suite rejects any other key.
 */
class X25519Key implements Key {
  readonly algorithm = { name: X25519 };
  constructor(
    readonly type: "public" | "private",
    readonly extractable: boolean,
    readonly object: KeyObject,
    readonly raw: Buffer | null,
  ) {}
}

function ours(key: Key, type: "public" | "private"): X25519Key {
  if (!(key instanceof X25519Key) || key.type !== type) {
    throw new TypeError(`not an X25519 ${type} key of this suite`);
  }
  return key;
}

function publicKey(object: KeyObject): X25519Key {
  return new X25519Key("public", true, object, rawX25519PublicKey(object));
}

/**
 * The suite's (non-extractable) key pair of an X25519 private KeyObject: an identity imports its
 * key once and opens with the pair, so no open derives the public key again.
 */
export function x25519KeyPair(privateKey: KeyObject): KeyPair {
  return {
    privateKey: new X25519Key("private", false, privateKey, null),
    publicKey: publicKey(createPublicKey(privateKey)),
  };
}

/** The 32 raw bytes of a public key of this KEM. */
export function x25519PublicKeyBytes(key: Key): Buffer {
  return Buffer.from(ours(key, "public").raw!);
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
  async function sharedSecret(dh: Buffer, enc: Uint8Array, pkRm: Uint8Array): Promise<Uint8Array> {
    // An all-zero DH output means a low-order public key (RFC 9180 §7.1.4): refuse it.
    // Every byte is read, so the time taken says nothing about the secret.
    let any = 0;
    for (const b of dh) any |= b;
    if (any === 0) throw new ValidationError("DH shared secret is all zero");
    const eaePrk = await LabeledExtract(kdf, suiteId, new Uint8Array(0), encode("eae_prk"), dh);
    const kemContext = concat(enc, pkRm);
    return LabeledExpand(kdf, suiteId, eaePrk, encode("shared_secret"), kemContext, 32);
  }

  function privateKey(object: KeyObject, extractable: boolean): X25519Key {
    return new X25519Key("private", extractable, object, null);
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
      const object = x25519PrivateKeyObject(sk);
      sk.fill(0);
      return { privateKey: privateKey(object, extractable), publicKey: publicKey(object) };
    },
    async GenerateKeyPair(extractable) {
      const pair = generateKeyPairSync("x25519");
      return {
        privateKey: privateKey(pair.privateKey, extractable),
        publicKey: publicKey(pair.publicKey),
      };
    },
    async SerializePublicKey(key) {
      return x25519PublicKeyBytes(key);
    },
    async DeserializePublicKey(key) {
      return publicKey(x25519PublicKeyObject(key));
    },
    async SerializePrivateKey(key) {
      const k = ours(key, "private");
      if (!k.extractable) throw new TypeError("the private key is not extractable");
      return Buffer.from(k.object.export({ format: "jwk" }).d as string, "base64url");
    },
    async DeserializePrivateKey(key, extractable) {
      return privateKey(x25519PrivateKeyObject(key), extractable);
    },
    async Encap(pkR) {
      const recipient = ours(pkR, "public");
      const eph = opts.ephemeralPrivateKey;
      const pair = eph ? null : generateKeyPairSync("x25519");
      const skE = pair ? pair.privateKey : x25519PrivateKeyObject(eph!);
      const enc = rawX25519PublicKey(pair ? pair.publicKey : skE);
      const dh = diffieHellman({ privateKey: skE, publicKey: recipient.object });
      try {
        return { shared_secret: await sharedSecret(dh, enc, recipient.raw!), enc };
      } finally {
        dh.fill(0);
      }
    },
    async Decap(enc, skR, pkR) {
      const sk = ours(skR, "private");
      const pkRm = pkR ? ours(pkR, "public").raw! : rawX25519PublicKey(sk.object);
      const dh = diffieHellman({ privateKey: sk.object, publicKey: x25519PublicKeyObject(enc) });
      try {
        return await sharedSecret(dh, enc, pkRm);
      } finally {
        dh.fill(0);
      }
    },
  };
  return () => kem;
}

/** HPKE's DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM: the x25519 stanza's suite. */
export function x25519Suite(opts: X25519KemOptions = {}): CipherSuite {
  return new CipherSuite(kemX25519(opts), KDF_HKDF_SHA256, AEAD_AES_256_GCM);
}
