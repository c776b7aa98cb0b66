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
// @hpke/core's own DHKEM(X25519): X25519 from the runtime's WebCrypto (OpenSSL), not a pure-JS
// curve (@hpke/dhkem-x25519, which this used before) — ~7 ms less CPU per `seal -r` or `open -i`
// of a small file (issue 11).
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import { fail } from "../format/errors.js";
import type { Identity, Recipient, Stanza } from "../format/stanza.js";
import { decodeBech32, encodeBech32Key } from "./bech32.js";
import {
  ab,
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
function suite(): CipherSuite {
  cachedSuite ??= new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Aes256Gcm(),
  });
  return cachedSuite;
}

export function x25519Tag(publicKey: Uint8Array): Buffer {
  if (publicKey.length !== X25519_KEY_SIZE) fail("E_KEY", "X25519 public key must be 32 bytes");
  return stanzaTag(TAG_LABEL, publicKey);
}

const X25519: HpkeStanzaKind = {
  type: X25519_STANZA,
  infoLabel: INFO_LABEL,
  encSize: 32,
  suite,
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
  if (!eph) return sealStanza(X25519, recipientPublicKey, fileKey);
  // @hpke's `ekm` takes a ready key pair (raw bytes would go through DeriveKeyPair instead).
  return sealStanza(X25519, recipientPublicKey, fileKey, async (s) => ({
    privateKey: await s.kem.importKey("raw", ab(eph), false),
    publicKey: await s.kem.importKey("raw", ab(x25519PublicKey(eph)), true),
  }));
}

/** Null when the stanza is not for this key (other type or tag); throws when it does not open. */
export async function unwrapX25519(
  stanza: Stanza,
  privateKey: Uint8Array,
  publicKey: Uint8Array = x25519PublicKey(privateKey),
): Promise<Buffer | null> {
  return openStanza(X25519, stanza, privateKey, () => publicKey);
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
  const sk = Buffer.from(privateKey);
  const pk = x25519PublicKey(sk);
  return {
    id: encodeX25519Recipient(pk),
    unwrap: (s) => unwrapX25519(s, sk, pk),
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
