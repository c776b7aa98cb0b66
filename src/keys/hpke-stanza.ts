/**
 * What the HPKE recipient stanzas (`x25519`, `mlkem768x25519`) share: the framing
 * `[tag, enc, ct]` with tag = SHA-256(tag label || public key)[0:16] and info = info label ||
 * tag, a recipient that recognises its stanzas by tag in constant time, and opening the sealed
 * file key into a copy whose HPKE buffer is wiped. Only the KEM differs between them.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { CipherSuite, SenderContextParams } from "@hpke/core";
import { fail } from "../format/errors.js";
import { FILE_KEY_SIZE } from "../format/filekey.js";
import { expectFields, type Recipient, type Stanza } from "../format/stanza.js";

export const HPKE_TAG_SIZE = 16;
/** HPKE's AES-256-GCM seal of the 32-byte file key: key and tag. */
export const HPKE_CT_SIZE = FILE_KEY_SIZE + 16;

/**
 * A fresh ArrayBuffer copy: @hpke wants ArrayBuffers, and some KEMs read `key.buffer`, so a
 * pooled Node Buffer (a view into 8 KiB) would be taken whole.
 */
export function ab(b: Uint8Array): ArrayBuffer {
  return new Uint8Array(b).buffer;
}

export function stanzaTag(label: string, publicKey: Uint8Array): Buffer {
  const h = createHash("sha256").update(Buffer.from(label, "ascii")).update(publicKey);
  return h.digest().subarray(0, HPKE_TAG_SIZE);
}

export function stanzaInfo(label: string, tag: Buffer): Buffer {
  return Buffer.concat([Buffer.from(label, "ascii"), tag]);
}

/** Whether `s` is a stanza of `type` carrying `tag` (compared in constant time). */
export function matchesTag(type: string, tag: Buffer): (s: Stanza) => boolean {
  return (s) =>
    s.type === type &&
    s.fields.length === 3 &&
    s.fields[0]!.length === HPKE_TAG_SIZE &&
    timingSafeEqual(s.fields[0]!, tag);
}

/**
 * The file key sealed in `ct` for the private key (raw, as the KEM imports it), else
 * E_DECRYPT naming the stanza and its recipient (`who`, a public string).
 */
export async function openFileKey(
  s: CipherSuite,
  privateKey: Uint8Array,
  enc: Buffer,
  info: Buffer,
  ct: Buffer,
  what: string,
): Promise<Buffer> {
  try {
    const recipientKey = await s.kem.importKey("raw", ab(privateKey), false);
    const pt = await s.open({ recipientKey, enc: ab(enc), info: ab(info) }, ab(ct));
    const view = new Uint8Array(pt);
    const fileKey = Buffer.from(view); // a copy: Buffer.from(ArrayBuffer) would share memory
    view.fill(0);
    return fileKey;
  } catch {
    return fail("E_DECRYPT", `${what} does not open: the header was modified`);
  }
}

/** What one HPKE stanza type brings to the shared framing: its name, KEM and key handling. */
export interface HpkeStanzaKind {
  readonly type: string;
  readonly infoLabel: string;
  /** The size of the KEM's `enc` field. */
  readonly encSize: number;
  readonly suite: () => CipherSuite | Promise<CipherSuite>;
  /** The recipient tag of a public key; E_KEY on a key of the wrong size. */
  readonly tag: (publicKey: Uint8Array) => Buffer;
  /** The public recipient string as messages show it. */
  readonly shown: (publicKey: Uint8Array) => string;
  /** The KEM checks public keys when sealing (ML-KEM): a failed seal is then E_KEY. */
  readonly checksKeyOnSeal?: boolean;
}

type Ekm = SenderContextParams["ekm"];

/**
 * The `[tag, enc, ct]` stanza sealing `fileKey` to the recipient. `ekm` fixes the ephemeral
 * (deterministic test vectors only); it is made from the suite once the recipient key imports.
 */
export async function sealStanza(
  kind: HpkeStanzaKind,
  recipientPublicKey: Uint8Array,
  fileKey: Uint8Array,
  ekm?: (s: CipherSuite) => Ekm | Promise<Ekm>,
): Promise<Stanza> {
  if (fileKey.length !== FILE_KEY_SIZE) fail("E_KEY", "file key must be 32 bytes");
  const tag = kind.tag(recipientPublicKey);
  const s = await kind.suite();
  const recipientKey = await s.kem.importKey("raw", ab(recipientPublicKey), true);
  const params: SenderContextParams = {
    recipientPublicKey: recipientKey,
    info: ab(stanzaInfo(kind.infoLabel, tag)),
  };
  if (ekm) params.ekm = await ekm(s);
  let sealed: { enc: ArrayBuffer; ct: ArrayBuffer };
  try {
    sealed = await s.seal(params, ab(fileKey));
  } catch (err) {
    if (!kind.checksKeyOnSeal) throw err;
    return fail("E_KEY", `${kind.shown(recipientPublicKey)} is not a valid public key`);
  }
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
export async function openStanza(
  kind: HpkeStanzaKind,
  stanza: Stanza,
  privateKey: Uint8Array,
  publicKey: () => Uint8Array | Promise<Uint8Array>,
): Promise<Buffer | null> {
  if (stanza.type !== kind.type) return null;
  const [tag, enc, ct] = expectFields(stanza, [HPKE_TAG_SIZE, kind.encSize, HPKE_CT_SIZE]) as [
    Buffer,
    Buffer,
    Buffer,
  ];
  const pk = await publicKey();
  if (!timingSafeEqual(tag, kind.tag(pk))) return null;
  const who = `${kind.type} stanza for ${kind.shown(pk)}`;
  return openFileKey(await kind.suite(), privateKey, enc, stanzaInfo(kind.infoLabel, tag), ct, who);
}

/** A recipient that wraps with `wrap` and knows its stanzas by tag. */
export function hpkeRecipient(
  kind: HpkeStanzaKind,
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
