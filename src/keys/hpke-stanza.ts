/**
 * What the HPKE recipient stanzas (`x25519`, `mlkem768x25519`) share: the framing
 * `[tag, enc, ct]` with tag = SHA-256(tag label || public key)[0:16] and info = info label ||
 * tag, a recipient that recognises its stanzas by tag in constant time, and opening the sealed
 * file key into a copy whose HPKE buffer is wiped. Only the KEM (and the HPKE library under it:
 * each kind brings its own seal and open) differs between them.
 */
import { fail } from "../format/errors.js";
import { FILE_KEY_SIZE } from "../format/filekey.js";
import { constantTimeEqual, sha256 } from "../format/primitives.js";
import { expectFields, type Recipient, type Stanza } from "../format/stanza.js";

export const HPKE_TAG_SIZE = 16;
/** HPKE's AES-256-GCM seal of the 32-byte file key: key and tag. */
export const HPKE_CT_SIZE = FILE_KEY_SIZE + 16;

export function stanzaTag(label: string, publicKey: Uint8Array): Buffer {
  return sha256(Buffer.from(label, "ascii"), publicKey).subarray(0, HPKE_TAG_SIZE);
}

export function stanzaInfo(label: string, tag: Buffer): Buffer {
  return Buffer.concat([Buffer.from(label, "ascii"), tag]);
}

/** Whether `s` is a stanza of `type` carrying `tag` (compared in constant time). */
export function matchesTag(type: string, tag: Buffer): (s: Stanza) => boolean {
  return (s) => s.type === type && s.fields.length === 3 && constantTimeEqual(s.fields[0]!, tag);
}

/**
 * What one HPKE stanza type brings to the shared framing: its name, KEM and key handling. `SK`
 * is the private key as its `open` takes it (raw bytes, or keys already imported).
 */
export interface HpkeStanzaKind<SK = Uint8Array> {
  readonly type: string;
  readonly infoLabel: string;
  /** The size of the KEM's `enc` field. */
  readonly encSize: number;
  /**
   * HPKE base-mode seal of `pt` to a raw public key, with `info` and an empty aad; E_KEY when
   * the KEM finds the public key unusable.
   */
  readonly seal: (publicKey: Uint8Array, info: Uint8Array, pt: Uint8Array) => Promise<HpkeSealed>;
  /** HPKE base-mode open; throws when it does not open. */
  readonly open: (
    privateKey: SK,
    enc: Uint8Array,
    info: Uint8Array,
    ct: Uint8Array,
  ) => Promise<Uint8Array>;
  /** The recipient tag of a public key; E_KEY on a key of the wrong size. */
  readonly tag: (publicKey: Uint8Array) => Buffer;
  /** The public recipient string as messages show it. */
  readonly shown: (publicKey: Uint8Array) => string;
}

export interface HpkeSealed {
  readonly enc: Uint8Array;
  readonly ct: Uint8Array;
}

/**
 * The file key sealed in `ct` for the private key, else E_DECRYPT naming the stanza and its
 * recipient (`who`, a public string).
 */
async function openFileKey<SK>(
  kind: HpkeStanzaKind<SK>,
  privateKey: SK,
  enc: Buffer,
  info: Buffer,
  ct: Buffer,
  who: string,
): Promise<Buffer> {
  let pt: Uint8Array;
  try {
    pt = await kind.open(privateKey, enc, info, ct);
  } catch {
    return fail("E_DECRYPT", `${who} does not open: the header was modified`);
  }
  const fileKey = Buffer.from(pt); // a copy, so the HPKE library's buffer can be wiped
  pt.fill(0);
  return fileKey;
}

/** The `[tag, enc, ct]` stanza sealing `fileKey` to the recipient. */
export async function sealStanza<SK>(
  kind: HpkeStanzaKind<SK>,
  recipientPublicKey: Uint8Array,
  fileKey: Uint8Array,
): Promise<Stanza> {
  if (fileKey.length !== FILE_KEY_SIZE) fail("E_KEY", "file key must be 32 bytes");
  const tag = kind.tag(recipientPublicKey);
  const sealed = await kind.seal(recipientPublicKey, stanzaInfo(kind.infoLabel, tag), fileKey);
  return {
    type: kind.type,
    fields: [Buffer.from(tag), Buffer.from(sealed.enc), Buffer.from(sealed.ct)],
  };
}

/**
 * The file key in `stanza` for this private key. Null when the stanza is not for it (other
 * type or tag); throws when its fields are malformed or it does not open. The public key is
 * asked for only once the stanza's type and fields check out.
 */
export async function openStanza<SK>(
  kind: HpkeStanzaKind<SK>,
  stanza: Stanza,
  privateKey: SK,
  publicKey: () => Uint8Array | Promise<Uint8Array>,
): Promise<Buffer | null> {
  if (stanza.type !== kind.type) return null;
  const [tag, enc, ct] = expectFields(stanza, [HPKE_TAG_SIZE, kind.encSize, HPKE_CT_SIZE]) as [
    Buffer,
    Buffer,
    Buffer,
  ];
  const pk = await publicKey();
  if (!constantTimeEqual(tag, kind.tag(pk))) return null;
  const who = `${kind.type} stanza for ${kind.shown(pk)}`;
  return openFileKey(kind, privateKey, enc, stanzaInfo(kind.infoLabel, tag), ct, who);
}

/** A recipient that wraps with `wrap` and knows its stanzas by tag. */
export function hpkeRecipient<SK>(
  kind: HpkeStanzaKind<SK>,
  id: string,
  publicKey: Buffer,
  wrap: (publicKey: Buffer, fileKey: Uint8Array) => Promise<Stanza>,
): Recipient {
  return {
    id,
    wrap: (fileKey) => wrap(publicKey, fileKey),
    matches: matchesTag(kind.type, kind.tag(publicKey)),
  };
}

/** An identity file as age writes one: two comment lines, then the secret key. */
export function identityFileText(identity: string, recipient: string, created: Date): string {
  return `# created: ${created.toISOString()}\n# recipient: ${recipient}\n${identity.toUpperCase()}\n`;
}
