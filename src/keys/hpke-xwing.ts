/**
 * X-Wing (draft-connolly-cfrg-xwing-kem-10: ML-KEM-768 + X25519, HPKE KEM id 0x647a) as a KEM
 * of the `hpke` library's CipherSuite, through the KEM interface the library documents for
 * outside implementations, as hpke-node.ts does for X25519. The KEM itself is
 * @noble/post-quantum's ml_kem768_x25519 (it reproduces the draft's vectors; >= 0.6 for FIPS 203's
 * encapsulation key check, a no-op in 0.5.x: docs/DECISIONS.md); HKDF-SHA256 and AES-256-GCM are
 * hpke-node.ts's, over OpenSSL. A private key is the 32-byte X-Wing seed (the draft's sk),
 * expanded by the KEM on each use.
 *
 * Only imported on first X-Wing use (xwing.ts, service/attested.ts): ML-KEM in pure JS stays out
 * of `import "tensorseal"` and of CLI start-up.
 */
import { createHash } from "node:crypto";
import type { ml_kem768_x25519 } from "@noble/post-quantum/hybrid.js";
import { CipherSuite, type KEM, type KEMFactory, type Key } from "hpke";
import { AEAD_AES_256_GCM, KDF_HKDF_SHA256 } from "./hpke-node.js";

let XWing: typeof ml_kem768_x25519 | null = null;

/**
 * @noble/post-quantum's X-Wing (ML-KEM in pure JS, with @noble/curves), imported on first use by
 * whichever function of this module needs it. A dynamic import, so the CLI's one-command bundles
 * leave the package in node_modules and load it only for a post-quantum run
 * (scripts/build-cli.mjs): it was ~63 KB of every bundle's source that no other command runs
 * (~0.5 ms of each start, issue 11).
 */
async function xwing(): Promise<typeof ml_kem768_x25519> {
  XWing ??= (await import("@noble/post-quantum/hybrid.js")).ml_kem768_x25519;
  return XWing;
}

const NAME = "X-Wing";
const SEED_SIZE = 32;
/** X-Wing's encapsulation randomness: 32 bytes for ML-KEM, 32 for the X25519 ephemeral key. */
export const XWING_ESEED_SIZE = 64;

/** A key of this KEM: its seed (private) or 1216-byte public key. Made only here. */
class XWingKey implements Key {
  readonly algorithm = { name: NAME };
  constructor(
    readonly type: "public" | "private",
    readonly extractable: boolean,
    readonly bytes: Uint8Array,
  ) {}
}

function pub(bytes: Uint8Array): XWingKey {
  return new XWingKey("public", true, bytes);
}

function ours(key: Key, type: "public" | "private"): XWingKey {
  if (!(key instanceof XWingKey) || key.type !== type) {
    throw new TypeError(`not an X-Wing ${type} key of this suite`);
  }
  return key;
}

/** A fresh random X-Wing key pair: the seed (the secret) and the public key. */
export async function xwingKeyPair(): Promise<{ seed: Uint8Array; publicKey: Uint8Array }> {
  const { secretKey, publicKey } = (await xwing()).keygen();
  return { seed: secretKey, publicKey };
}

/** The 1216-byte public key of a 32-byte seed (the draft's GenerateKeyPairDerand). */
export async function xwingPublicKeyOf(seed: Uint8Array): Promise<Uint8Array> {
  return (await xwing()).keygen(seed).publicKey;
}

export interface XWingKemOptions {
  /** A fixed 64-byte encapsulation seed for every Encap: deterministic test vectors only. */
  readonly eseed?: Uint8Array;
}

/** X-Wing for the `hpke` library's CipherSuite. */
export function kemXWing(opts: XWingKemOptions = {}): KEMFactory {
  const kem: KEM = {
    id: 0x647a,
    type: "KEM",
    name: NAME,
    Nsecret: 32,
    Nenc: 1120,
    Npk: 1216,
    Nsk: SEED_SIZE,
    async DeriveKeyPair(ikm, extractable) {
      // seed = SHAKE256(ikm, 32), as @hpke/hybridkem-x-wing (which this replaced) derived it.
      const seed = createHash("shake256", { outputLength: SEED_SIZE }).update(ikm).digest();
      const privateKey = new XWingKey("private", extractable, new Uint8Array(seed));
      seed.fill(0);
      return { privateKey, publicKey: pub(await xwingPublicKeyOf(privateKey.bytes)) };
    },
    async GenerateKeyPair(extractable) {
      const { seed, publicKey } = await xwingKeyPair();
      return { privateKey: new XWingKey("private", extractable, seed), publicKey: pub(publicKey) };
    },
    async SerializePublicKey(key) {
      return new Uint8Array(ours(key, "public").bytes);
    },
    async DeserializePublicKey(key) {
      return pub(new Uint8Array(key));
    },
    async SerializePrivateKey(key) {
      const k = ours(key, "private");
      if (!k.extractable) throw new TypeError("the private key is not extractable");
      return new Uint8Array(k.bytes);
    },
    async DeserializePrivateKey(key, extractable) {
      return new XWingKey("private", extractable, new Uint8Array(key));
    },
    async Encap(pkR) {
      // noble checks the ML-KEM encapsulation key (FIPS 203 §7.2) and refuses a low-order X25519
      // key; either throws, which the suite reports as an EncapError.
      const r = (await xwing()).encapsulate(ours(pkR, "public").bytes, opts.eseed);
      return { shared_secret: r.sharedSecret, enc: r.cipherText };
    },
    async Decap(enc, skR) {
      return (await xwing()).decapsulate(enc, ours(skR, "private").bytes);
    },
  };
  return () => kem;
}

let cachedSuite: CipherSuite | null = null;

/** HPKE's X-Wing, HKDF-SHA256, AES-256-GCM: the mlkem768x25519 stanza's and attested suite. */
export function xwingSuite(opts: XWingKemOptions = {}): CipherSuite {
  if (opts.eseed) return new CipherSuite(kemXWing(opts), KDF_HKDF_SHA256, AEAD_AES_256_GCM);
  cachedSuite ??= new CipherSuite(kemXWing(), KDF_HKDF_SHA256, AEAD_AES_256_GCM);
  return cachedSuite;
}

export interface XWingSealOptions {
  readonly info: Uint8Array;
  readonly aad?: Uint8Array;
  /** See {@link XWingKemOptions.eseed}. */
  readonly eseed?: Uint8Array;
}

/** HPKE base-mode seal to a raw public key; throws when the KEM refuses the key. */
export async function sealXWing(
  publicKey: Uint8Array,
  pt: Uint8Array,
  opts: XWingSealOptions,
): Promise<{ enc: Uint8Array; ct: Uint8Array }> {
  if (opts.eseed && opts.eseed.length !== XWING_ESEED_SIZE) {
    throw new RangeError(`the X-Wing eseed must be ${XWING_ESEED_SIZE} bytes`);
  }
  const s = xwingSuite({ eseed: opts.eseed });
  const { info, aad } = opts;
  const r = await s.Seal(await s.DeserializePublicKey(publicKey), pt, { info, aad });
  return { enc: r.encapsulatedSecret, ct: r.ciphertext };
}

/** HPKE base-mode open with a raw seed; the suite's copy of the seed is wiped after. */
export async function openXWing(
  seed: Uint8Array,
  enc: Uint8Array,
  ct: Uint8Array,
  opts: { readonly info: Uint8Array; readonly aad?: Uint8Array },
): Promise<Uint8Array> {
  const s = xwingSuite();
  const key = ours(await s.DeserializePrivateKey(seed, false), "private");
  try {
    return await s.Open(key, enc, ct, opts);
  } finally {
    key.bytes.fill(0);
  }
}
