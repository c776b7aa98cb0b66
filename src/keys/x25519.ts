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
import { timingSafeEqual } from "node:crypto";
import { Aes256Gcm, CipherSuite, HkdfSha256, type SenderContextParams } from "@hpke/core";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";
import { fail } from "../format/errors.js";
import { FILE_KEY_SIZE } from "../format/filekey.js";
import { expectFields, type Identity, type Recipient, type Stanza } from "../format/stanza.js";
import { decodeBech32, encodeBech32 } from "./bech32.js";
import {
  ab,
  HPKE_CT_SIZE,
  HPKE_TAG_SIZE,
  matchesTag,
  openFileKey,
  stanzaInfo,
  stanzaTag,
} from "./hpke-stanza.js";
import { generateX25519KeyPair, X25519_KEY_SIZE, x25519PublicKey } from "./x25519-key.js";

export const X25519_STANZA = "x25519";
export const X25519_RECIPIENT_HRP = "tseal";
export const X25519_IDENTITY_HRP = "tseal-secret-key-";
export const X25519_TAG_SIZE = HPKE_TAG_SIZE;
const TAG_LABEL = "tensorseal.dev/v1 x25519 tag\0";
const INFO_LABEL = "tensorseal.dev/v1 x25519\0";
const ENC_SIZE = 32;

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

function info(tag: Buffer): Buffer {
  return stanzaInfo(INFO_LABEL, tag);
}

export interface WrapX25519Options {
  /** Fixed ephemeral private key, for deterministic test vectors only. */
  readonly ephemeralPrivateKey?: Uint8Array;
}

export async function wrapX25519(
  recipientPublicKey: Uint8Array,
  fileKey: Uint8Array,
  opts: WrapX25519Options = {},
): Promise<Stanza> {
  if (fileKey.length !== FILE_KEY_SIZE) fail("E_KEY", "file key must be 32 bytes");
  const tag = x25519Tag(recipientPublicKey);
  const s = suite();
  const recipientKey = await s.kem.importKey("raw", ab(recipientPublicKey), true);
  const params: SenderContextParams = { recipientPublicKey: recipientKey, info: ab(info(tag)) };
  if (opts.ephemeralPrivateKey) {
    // @hpke's `ekm` takes a ready key pair (raw bytes would go through DeriveKeyPair instead).
    const eph = opts.ephemeralPrivateKey;
    params.ekm = {
      privateKey: await s.kem.importKey("raw", ab(eph), false),
      publicKey: await s.kem.importKey("raw", ab(x25519PublicKey(eph)), true),
    };
  }
  const sealed = await s.seal(params, ab(fileKey));
  return {
    type: X25519_STANZA,
    fields: [Buffer.from(tag), Buffer.from(sealed.enc), Buffer.from(sealed.ct)],
  };
}

/** Null when the stanza is not for this key (other type or tag); throws when it does not open. */
export async function unwrapX25519(
  stanza: Stanza,
  privateKey: Uint8Array,
  publicKey: Uint8Array = x25519PublicKey(privateKey),
): Promise<Buffer | null> {
  if (stanza.type !== X25519_STANZA) return null;
  const [tag, enc, ct] = expectFields(stanza, [X25519_TAG_SIZE, ENC_SIZE, HPKE_CT_SIZE]) as [
    Buffer,
    Buffer,
    Buffer,
  ];
  if (!timingSafeEqual(tag, x25519Tag(publicKey))) return null;
  const who = `x25519 stanza for ${encodeX25519Recipient(publicKey)}`;
  return openFileKey(suite(), privateKey, enc, info(tag), ct, who);
}

export function encodeX25519Recipient(publicKey: Uint8Array): string {
  if (publicKey.length !== X25519_KEY_SIZE) fail("E_KEY", "X25519 public key must be 32 bytes");
  return encodeBech32(X25519_RECIPIENT_HRP, publicKey);
}

/** Identity strings are printed in upper case, like age's AGE-SECRET-KEY-1. */
export function encodeX25519Identity(privateKey: Uint8Array): string {
  if (privateKey.length !== X25519_KEY_SIZE) fail("E_KEY", "X25519 private key must be 32 bytes");
  return encodeBech32(X25519_IDENTITY_HRP, privateKey).toUpperCase();
}

export function decodeX25519Recipient(s: string): Buffer {
  return decodeBech32(s, X25519_RECIPIENT_HRP, X25519_KEY_SIZE, "recipient");
}

export function decodeX25519Identity(s: string): Buffer {
  return decodeBech32(s, X25519_IDENTITY_HRP, X25519_KEY_SIZE, "identity (secret key)");
}

export function x25519Recipient(publicKey: Uint8Array): Recipient {
  const pk = Buffer.from(publicKey);
  const tag = x25519Tag(pk);
  return {
    id: encodeX25519Recipient(pk),
    wrap: (fileKey) => wrapX25519(pk, fileKey),
    matches: matchesTag(X25519_STANZA, tag),
  };
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
  return `# created: ${created.toISOString()}\n# recipient: ${recipient}\n${identity.toUpperCase()}\n`;
}
