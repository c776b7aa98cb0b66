/**
 * The `x25519` stanza (public-key recipients): HPKE (RFC 9180) base mode with
 * DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and AES-256-GCM seals the 32-byte file key.
 *
 *   fields = [tag (16), enc (32), ct (48)]
 *   tag    = SHA-256("tensorseal.dev/v1 x25519 tag\0" || recipient public key)[0:16]
 *   info   = "tensorseal.dev/v1 x25519\0" || tag, aad = empty
 *
 * The tag lets an identity skip other recipients' stanzas without a trial decryption; it is
 * also bound into the HPKE info, so a stanza cannot be re-tagged for another recipient.
 */
// The `hpke` library's CipherSuite with its primitives from OpenSSL (hpke-node.ts): no
// WebCrypto, so no thread-pool job per step — ~8 ms less CPU per `seal -r` or `open -i` of a
// small file than @hpke/core's WebCrypto suite (issue 11).
import type { CipherSuite, KeyPair } from "hpke";
import { fail } from "../format/errors.js";
import type { Identity, Recipient, Stanza } from "../format/stanza.js";
import { decodeBech32, encodeBech32Key } from "./bech32.js";
import { x25519KeyPair, x25519PublicKeyBytes, x25519Suite } from "./hpke-node.js";
import {
  HPKE_TAG_SIZE,
  type HpkeStanzaKind,
  hpkeRecipient,
  identityFileText,
  openStanza,
  sealStanza,
  stanzaTag,
} from "./hpke-stanza.js";
import { generateX25519KeyPair, X25519_KEY_SIZE, x25519PublicKey } from "./x25519-key.js";

export const X25519_STANZA = "x25519";
export const X25519_RECIPIENT_HRP = "tseal";
export const X25519_IDENTITY_HRP = "tseal-secret-key-";
export const X25519_TAG_SIZE = HPKE_TAG_SIZE;
const TAG_LABEL = "tensorseal.dev/v1 x25519 tag\0";
const INFO_LABEL = "tensorseal.dev/v1 x25519\0";

let cachedSuite: CipherSuite | null = null;
function suite(ephemeralPrivateKey?: Uint8Array): CipherSuite {
  if (ephemeralPrivateKey) return x25519Suite({ ephemeralPrivateKey });
  cachedSuite ??= x25519Suite();
  return cachedSuite;
}

/**
 * The `seal` of the x25519 kind; a fixed ephemeral key makes it deterministic (vectors). A
 * public key of low order (all-zero DH output, RFC 9180 §7.1.4) is E_KEY.
 */
function sealWith(ephemeralPrivateKey?: Uint8Array): HpkeStanzaKind<KeyPair>["seal"] {
  return async (publicKey, info, pt) => {
    const s = suite(ephemeralPrivateKey);
    try {
      const sealed = await s.Seal(await s.DeserializePublicKey(publicKey), pt, { info });
      return { enc: sealed.encapsulatedSecret, ct: sealed.ciphertext };
    } catch {
      return fail("E_KEY", `${encodeX25519Recipient(publicKey)} is not a valid public key`);
    }
  };
}

async function open(keys: KeyPair, enc: Uint8Array, info: Uint8Array, ct: Uint8Array) {
  return suite().Open(keys, enc, ct, { info });
}

export function x25519Tag(publicKey: Uint8Array): Buffer {
  if (publicKey.length !== X25519_KEY_SIZE) fail("E_KEY", "X25519 public key must be 32 bytes");
  return stanzaTag(TAG_LABEL, publicKey);
}

const X25519: HpkeStanzaKind<KeyPair> = {
  type: X25519_STANZA,
  infoLabel: INFO_LABEL,
  encSize: 32,
  seal: sealWith(),
  open,
  tag: x25519Tag,
  shown: encodeX25519Recipient,
};

export interface WrapX25519Options {
  /** Fixed ephemeral private key, for deterministic test vectors only. */
  readonly ephemeralPrivateKey?: Uint8Array;
}

export async function wrapX25519(
  recipientPublicKey: Uint8Array,
  fileKey: Uint8Array,
  opts: WrapX25519Options = {},
): Promise<Stanza> {
  const eph = opts.ephemeralPrivateKey;
  const kind = eph ? { ...X25519, seal: sealWith(eph) } : X25519;
  return sealStanza(kind, recipientPublicKey, fileKey);
}

/** Null when the stanza is not for this key (other type or tag); throws when it does not open. */
export async function unwrapX25519(stanza: Stanza, privateKey: Uint8Array): Promise<Buffer | null> {
  return x25519Identity(privateKey).unwrap(stanza);
}

export function encodeX25519Recipient(publicKey: Uint8Array): string {
  return encodeBech32Key(X25519_RECIPIENT_HRP, publicKey, X25519_KEY_SIZE, "X25519 public key");
}

/** Identity strings are printed in upper case, like age's AGE-SECRET-KEY-1. */
export function encodeX25519Identity(privateKey: Uint8Array): string {
  const what = "X25519 private key";
  return encodeBech32Key(X25519_IDENTITY_HRP, privateKey, X25519_KEY_SIZE, what).toUpperCase();
}

export function decodeX25519Recipient(s: string): Buffer {
  return decodeBech32(s, X25519_RECIPIENT_HRP, X25519_KEY_SIZE, "recipient");
}

export function decodeX25519Identity(s: string): Buffer {
  return decodeBech32(s, X25519_IDENTITY_HRP, X25519_KEY_SIZE, "identity (secret key)");
}

export function x25519Recipient(publicKey: Uint8Array): Recipient {
  const pk = Buffer.from(publicKey);
  return hpkeRecipient(X25519, encodeX25519Recipient(pk), pk, wrapX25519);
}

/** The identity's id is its public recipient string: safe to show, never the secret. */
export function x25519Identity(privateKey: Uint8Array): Identity {
  const keys = x25519KeyPair(privateKey);
  const pk = x25519PublicKeyBytes(keys.publicKey);
  return {
    id: encodeX25519Recipient(pk),
    unwrap: (s) => openStanza(X25519, s, keys, () => pk),
  };
}

export function parseX25519Recipient(s: string): Recipient {
  return x25519Recipient(decodeX25519Recipient(s));
}

export function parseX25519Identity(s: string): Identity {
  const sk = decodeX25519Identity(s);
  const id = x25519Identity(sk);
  sk.fill(0);
  return id;
}

export interface GeneratedIdentity {
  /** TSEAL-SECRET-KEY-1...: the secret; store it like a password. */
  readonly identity: string;
  /** tseal1...: the public recipient to share. */
  readonly recipient: string;
}

export function generateX25519Identity(): GeneratedIdentity {
  const kp = generateX25519KeyPair();
  const out = {
    identity: encodeX25519Identity(kp.privateKey),
    recipient: encodeX25519Recipient(kp.publicKey),
  };
  kp.privateKey.fill(0);
  return out;
}

/** An identity file as age writes one: two comment lines, then the secret key. */
export function formatIdentityFile(identity: string, created: Date = new Date()): string {
  const sk = decodeX25519Identity(identity);
  const recipient = encodeX25519Recipient(x25519PublicKey(sk));
  sk.fill(0);
  return identityFileText(identity, recipient, created);
}
