/**
 * The `kek` stanza (spec/FORMAT.md §3.2): the file key sealed with AES-256-GCM under one version
 * of a named key-encryption key; name and version are bound as AAD so a stanza cannot be
 * relabelled to another key or version.
 */
import { ByteWriter } from "../format/bytes.js";
import { fail } from "../format/errors.js";
import { gcmOpen, gcmSeal, randomBytes } from "../format/primitives.js";
import { expectFields, type Identity, type Recipient, type Stanza } from "../format/stanza.js";

export const KEK_STANZA = "kek";
const AAD_LABEL = "tensorseal.dev/v1 kek\0";

export interface KekRef {
  readonly name: string;
  readonly version: number;
}

function aad(ref: KekRef): Buffer {
  return new ByteWriter()
    .raw(Buffer.from(AAD_LABEL, "ascii"))
    .str16(ref.name)
    .u32(ref.version)
    .finish();
}

/** Wraps under one KEK version; `nonce` is injectable only for deterministic test vectors. */
export function wrapKek(
  ref: KekRef,
  kek: Uint8Array,
  fileKey: Uint8Array,
  nonce = randomBytes(12),
): Stanza {
  if (kek.length !== 32) fail("E_KEY", "KEK must be 32 bytes");
  const name = Buffer.from(ref.name, "utf8");
  // A lone surrogate would be written as U+FFFD: the stanza would name another key.
  if (name.toString("utf8") !== ref.name) fail("E_USAGE", "KEK name is not valid Unicode text");
  if (name.length === 0 || name.length > 128) fail("E_USAGE", "KEK name must be 1..128 bytes");
  if (!Number.isInteger(ref.version) || ref.version < 1 || ref.version > 0xffffffff) {
    fail("E_USAGE", `KEK version ${ref.version} must be an integer from 1 to 2^32-1`);
  }
  // Random 96-bit nonce: each KEK version wraps far fewer than 2^32 keys (issue #3 caps usage).
  const ct = gcmSeal(kek, nonce, fileKey, aad(ref));
  const version = Buffer.alloc(4);
  version.writeUInt32BE(ref.version);
  return { type: KEK_STANZA, fields: [name, version, nonce, ct] };
}

export function parseKekStanza(s: Stanza): KekRef & { nonce: Buffer; wrapped: Buffer } {
  const [name, version, nonce, wrapped] = expectFields(s, [null, 4, 12, 48]) as [
    Buffer,
    Buffer,
    Buffer,
    Buffer,
  ];
  if (name.length === 0 || name.length > 128)
    fail("E_MALFORMED", "kek stanza name must be 1..128 bytes");
  const text = name.toString("utf8");
  // Rejected, never replaced (spec §1.1): a name with U+FFFD in it would be another key's name.
  if (!Buffer.from(text, "utf8").equals(name))
    fail("E_MALFORMED", "kek stanza name is not valid UTF-8");
  return { name: text, version: version.readUInt32BE(), nonce, wrapped };
}

export function unwrapKek(s: Stanza, kek: Uint8Array): Buffer {
  const p = parseKekStanza(s);
  return (
    gcmOpen(kek, p.nonce, p.wrapped, aad(p)) ??
    fail(
      "E_DECRYPT",
      `kek stanza for ${p.name} v${p.version} does not open with this key (another keystore, or a modified header)`,
    )
  );
}

/** A recipient for one KEK version held in memory (the keystore supplies the material). */
export function kekRecipient(ref: KekRef, kek: Uint8Array): Recipient {
  return {
    id: `kek:${ref.name}`,
    wrap: async (fileKey) => wrapKek(ref, kek, fileKey),
    matches: (s) => s.type === KEK_STANZA && parseKekStanza(s).name === ref.name,
  };
}

/** An identity that looks up KEK material by name and version; null means "not mine". */
export function kekIdentity(id: string, lookup: (ref: KekRef) => Uint8Array | null): Identity {
  return {
    id,
    unwrap: async (s) => {
      if (s.type !== KEK_STANZA) return null;
      const kek = lookup(parseKekStanza(s));
      return kek ? unwrapKek(s, kek) : null;
    },
  };
}
