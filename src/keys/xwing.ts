/**
 * The `mlkem768x25519` stanza (post-quantum hybrid recipients, spec/FORMAT.md §3.7): HPKE
 * (RFC 9180) base mode with the X-Wing KEM (ML-KEM-768 + X25519, KEM id 0x647a), HKDF-SHA256
 * and AES-256-GCM seals the 32-byte file key. The same KEM as the C2SP age spec's
 * `mlkem768x25519` recipient; the framing (tag, info) follows our `x25519` stanza.
 *
 *   fields = [tag (16), enc (1120), ct (48)]
 *   tag    = SHA-256("tensorseal.dev/v1 mlkem768x25519 tag\0" || recipient public key)[0:16]
 *   info   = "tensorseal.dev/v1 mlkem768x25519\0" || tag, aad = empty
 *
 * The X-Wing KEM (hpke-xwing.ts, and ML-KEM under it) is loaded on first use, not with the
 * package: `import "tensorseal"` stays light. An identity is the 32-byte X-Wing seed; its public
 * key (1216 bytes) takes an ML-KEM key generation, so it is derived once, when first needed.
 */
import { fail } from "../format/errors.js";
import type { Identity, Recipient, Stanza } from "../format/stanza.js";
import { decodeBech32, encodeBech32, encodeBech32Key } from "./bech32.js";
import {
  HPKE_TAG_SIZE,
  type HpkeStanzaKind,
  hpkeRecipient,
  identityFileText,
  openStanza,
  sealStanza,
  stanzaTag,
} from "./hpke-stanza.js";
import type { GeneratedIdentity } from "./x25519.js";

export const XWING_STANZA = "mlkem768x25519";
/** Bech32 HRPs: `tseal1pq1...` and `TSEAL-SECRET-KEY-PQ-1...` (as age's `age1pq1...`). */
export const XWING_RECIPIENT_HRP = "tseal1pq";
export const XWING_IDENTITY_HRP = "tseal-secret-key-pq-";
export const XWING_PUBLIC_KEY_SIZE = 1216;
export const XWING_SEED_SIZE = 32;
export const XWING_ENC_SIZE = 1120;
export const XWING_TAG_SIZE = HPKE_TAG_SIZE;
const TAG_LABEL = "tensorseal.dev/v1 mlkem768x25519 tag\0";
const INFO_LABEL = "tensorseal.dev/v1 mlkem768x25519\0";
/** Shown in place of a 1960-character recipient in messages. */
const SHOWN_CHARS = 24;

type XWingModule = typeof import("./hpke-xwing.js");
let loaded: Promise<XWingModule> | null = null;
function xwing(): Promise<XWingModule> {
  loaded ??= import("./hpke-xwing.js");
  loaded.catch(() => {
    loaded = null;
  });
  return loaded;
}

export function xwingTag(publicKey: Uint8Array): Buffer {
  if (publicKey.length !== XWING_PUBLIC_KEY_SIZE) {
    fail("E_KEY", `ML-KEM-768+X25519 public key must be ${XWING_PUBLIC_KEY_SIZE} bytes`);
  }
  return stanzaTag(TAG_LABEL, publicKey);
}

/** The `seal` of the X-Wing kind; a fixed `eseed` makes it deterministic (vectors). */
function sealWith(eseed?: Uint8Array): HpkeStanzaKind["seal"] {
  return async (publicKey, info, pt) => {
    const { sealXWing } = await xwing();
    try {
      return await sealXWing(publicKey, pt, { info, eseed });
    } catch {
      // ML-KEM's encapsulation key check (FIPS 203 §7.2) failed, or the X25519 key is low-order.
      return fail("E_KEY", `${shownXWingRecipient(publicKey)} is not a valid public key`);
    }
  };
}

async function open(seed: Uint8Array, enc: Uint8Array, info: Uint8Array, ct: Uint8Array) {
  return (await xwing()).openXWing(seed, enc, ct, { info });
}

const XWING: HpkeStanzaKind = {
  type: XWING_STANZA,
  infoLabel: INFO_LABEL,
  encSize: XWING_ENC_SIZE,
  seal: sealWith(),
  open,
  tag: xwingTag,
  shown: shownXWingRecipient,
};

/** The 1216-byte X-Wing public key of a 32-byte seed (draft-connolly-cfrg-xwing-kem §5.2). */
export async function xwingPublicKey(seed: Uint8Array): Promise<Buffer> {
  if (seed.length !== XWING_SEED_SIZE) fail("E_KEY", "ML-KEM-768+X25519 seed must be 32 bytes");
  return Buffer.from(await (await xwing()).xwingPublicKeyOf(seed));
}

export interface WrapXWingOptions {
  /** Fixed 64-byte X-Wing encapsulation seed (`eseed`), for deterministic test vectors only. */
  readonly eseed?: Uint8Array;
}

export async function wrapXWing(
  recipientPublicKey: Uint8Array,
  fileKey: Uint8Array,
  opts: WrapXWingOptions = {},
): Promise<Stanza> {
  const eseed = opts.eseed;
  if (eseed && eseed.length !== 64) fail("E_KEY", "X-Wing eseed must be 64 bytes");
  const kind = eseed ? { ...XWING, seal: sealWith(eseed) } : XWING;
  return sealStanza(kind, recipientPublicKey, fileKey);
}

/** Null when the stanza is not for this key (other type or tag); throws when it does not open. */
export async function unwrapXWing(
  stanza: Stanza,
  seed: Uint8Array,
  publicKey?: Uint8Array,
): Promise<Buffer | null> {
  return openStanza(XWING, stanza, seed, () => publicKey ?? xwingPublicKey(seed));
}

export function encodeXWingRecipient(publicKey: Uint8Array): string {
  const what = "ML-KEM-768+X25519 public key";
  return encodeBech32Key(XWING_RECIPIENT_HRP, publicKey, XWING_PUBLIC_KEY_SIZE, what);
}

/** Identity strings are printed in upper case, like age's AGE-SECRET-KEY-PQ-1. */
export function encodeXWingIdentity(seed: Uint8Array): string {
  const what = "ML-KEM-768+X25519 seed";
  return encodeBech32Key(XWING_IDENTITY_HRP, seed, XWING_SEED_SIZE, what).toUpperCase();
}

export function decodeXWingRecipient(s: string): Buffer {
  return decodeBech32(s, XWING_RECIPIENT_HRP, XWING_PUBLIC_KEY_SIZE, "post-quantum recipient");
}

export function decodeXWingIdentity(s: string): Buffer {
  return decodeBech32(s, XWING_IDENTITY_HRP, XWING_SEED_SIZE, "post-quantum identity (secret key)");
}

/** The recipient string cut short for messages: the whole one is about 1960 characters. */
export function shownXWingRecipient(publicKey: Uint8Array): string {
  const full = encodeBech32(XWING_RECIPIENT_HRP, publicKey);
  return `${full.slice(0, SHOWN_CHARS)}...${full.slice(-8)}`;
}

export function xwingRecipient(publicKey: Uint8Array): Recipient {
  const pk = Buffer.from(publicKey);
  return hpkeRecipient(XWING, encodeXWingRecipient(pk), pk, wrapXWing);
}

/**
 * An identity for one X-Wing seed. Its id is the (shortened) public recipient once the public
 * key is derived, which happens on the first stanza of this type; never the secret.
 */
export function xwingIdentity(seed: Uint8Array): Identity {
  const sk = Buffer.from(seed);
  if (sk.length !== XWING_SEED_SIZE) fail("E_KEY", "ML-KEM-768+X25519 seed must be 32 bytes");
  let pk: Promise<Buffer> | null = null;
  let shown: string | null = null;
  const publicKey = (): Promise<Buffer> => {
    pk ??= xwingPublicKey(sk).then((k) => {
      shown = shownXWingRecipient(k);
      return k;
    });
    return pk;
  };
  return {
    get id() {
      return shown ?? "a tseal1pq1... identity";
    },
    unwrap: async (s) => (s.type === XWING_STANZA ? unwrapXWing(s, sk, await publicKey()) : null),
  };
}

export function parseXWingRecipient(s: string): Recipient {
  return xwingRecipient(decodeXWingRecipient(s));
}

export function parseXWingIdentity(s: string): Identity {
  const sk = decodeXWingIdentity(s);
  const id = xwingIdentity(sk);
  sk.fill(0);
  return id;
}

/** As GeneratedIdentity: identity TSEAL-SECRET-KEY-PQ-1... (the secret), recipient tseal1pq1... */
export type GeneratedXWingIdentity = GeneratedIdentity;

export async function generateXWingIdentity(): Promise<GeneratedXWingIdentity> {
  const { seed, publicKey } = await (await xwing()).xwingKeyPair();
  const out = { identity: encodeXWingIdentity(seed), recipient: encodeXWingRecipient(publicKey) };
  seed.fill(0);
  return out;
}

/** An identity file with one post-quantum identity, laid out as formatIdentityFile's. */
export async function formatXWingIdentityFile(
  identity: string,
  created: Date = new Date(),
): Promise<string> {
  const sk = decodeXWingIdentity(identity);
  const recipient = encodeXWingRecipient(await xwingPublicKey(sk));
  sk.fill(0);
  return identityFileText(identity, recipient, created);
}
