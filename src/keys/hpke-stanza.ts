/**
 * What the HPKE recipient stanzas (`x25519`, `mlkem768x25519`) share: the framing
 * `[tag, enc, ct]` with tag = SHA-256(tag label || public key)[0:16] and info = info label ||
 * tag, a recipient that recognises its stanzas by tag in constant time, and opening the sealed
 * file key into a copy whose HPKE buffer is wiped. Only the KEM differs between them.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { CipherSuite } from "@hpke/core";
import { fail } from "../format/errors.js";
import { FILE_KEY_SIZE } from "../format/filekey.js";
import type { Stanza } from "../format/stanza.js";

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
