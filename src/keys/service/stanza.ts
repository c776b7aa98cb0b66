/**
 * The `service` stanza (spec/FORMAT.md §3.6): it names the key service (its server id), the key
 * and the version; only the service holds the KEK versions.
 *
 *   fields = [serverId (UTF-8, 1..128), name (UTF-8, 1..128), version u32, nonce 12, wrapped 48]
 *   aad    = "tensorseal.dev/v1 service\0" || u16(len(serverId)) || serverId
 *            || u16(len(name)) || name || u32(version)
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { ByteWriter } from "../../format/bytes.js";
import { fail } from "../../format/errors.js";
import { expectFields, type Stanza } from "../../format/stanza.js";
export const SERVICE_STANZA = "service";
const AAD_LABEL = "tensorseal.dev/v1 service\0";

export interface ServiceKeyRef {
  readonly serverId: string;
  readonly name: string;
  readonly version: number;
}

export interface ServiceStanza extends ServiceKeyRef {
  readonly nonce: Buffer;
  readonly wrapped: Buffer;
}

function utf8Field(b: Buffer, what: string): string {
  const s = b.toString("utf8");
  if (b.length === 0 || b.length > 128 || !Buffer.from(s, "utf8").equals(b)) {
    fail("E_MALFORMED", `service stanza ${what} must be 1..128 bytes of UTF-8`);
  }
  return s;
}

export function serviceAad(ref: ServiceKeyRef): Buffer {
  return new ByteWriter()
    .raw(Buffer.from(AAD_LABEL, "ascii"))
    .str16(ref.serverId)
    .str16(ref.name)
    .u32(ref.version)
    .finish();
}

export function parseServiceStanza(s: Stanza): ServiceStanza {
  if (s.type !== SERVICE_STANZA) fail("E_MALFORMED", `not a service stanza: ${s.type}`);
  const [id, name, version, nonce, wrapped] = expectFields(s, [null, null, 4, 12, 48]) as [
    Buffer,
    Buffer,
    Buffer,
    Buffer,
    Buffer,
  ];
  const v = version.readUInt32BE();
  if (v === 0) fail("E_MALFORMED", "service stanza version must be at least 1");
  return {
    serverId: utf8Field(id, "server id"),
    name: utf8Field(name, "key name"),
    version: v,
    nonce,
    wrapped,
  };
}

/**
 * "sha256:<hex>" of a service stanza's wrapped file key (the AES-GCM output, 48 bytes): what
 * `seal --register` records with an artifact and what the service looks the artifact up by
 * when it unwraps the stanza (docs/SERVICE.md, "Artifact-aware authorization").
 */
export function serviceStanzaDigest(s: Stanza): string {
  return `sha256:${createHash("sha256").update(parseServiceStanza(s).wrapped).digest("hex")}`;
}

/** Seals FK under one server-held KEK version (server side). */
export function sealServiceStanza(
  ref: ServiceKeyRef,
  kek: Uint8Array,
  fileKey: Uint8Array,
): Stanza {
  if (kek.length !== 32 || fileKey.length !== 32) fail("E_KEY", "KEK and file key are 32 bytes");
  // Random 96-bit nonce: a KEK version wraps far fewer than 2^32 keys before rotation.
  const nonce = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", kek, nonce).setAAD(serviceAad(ref));
  const wrapped = Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
  const version = Buffer.alloc(4);
  version.writeUInt32BE(ref.version);
  return {
    type: SERVICE_STANZA,
    fields: [
      Buffer.from(ref.serverId, "utf8"),
      Buffer.from(ref.name, "utf8"),
      version,
      nonce,
      wrapped,
    ],
  };
}

/** Opens a parsed service stanza with its KEK version (server side); E_DECRYPT on failure. */
export function openServiceStanza(p: ServiceStanza, kek: Uint8Array): Buffer {
  const d = createDecipheriv("aes-256-gcm", kek, p.nonce).setAAD(serviceAad(p));
  d.setAuthTag(p.wrapped.subarray(32));
  try {
    return Buffer.concat([d.update(p.wrapped.subarray(0, 32)), d.final()]);
  } catch {
    return fail("E_DECRYPT", `service stanza for ${p.name} v${p.version} does not open`);
  }
}

/** JSON form of a stanza on the wire: type plus base64 fields. */
export interface WireStanza {
  type: string;
  fields: string[];
}

export function stanzaToWire(s: Stanza): WireStanza {
  return { type: s.type, fields: s.fields.map((f) => f.toString("base64")) };
}

export function stanzaFromWire(w: WireStanza): Stanza {
  return { type: w.type, fields: w.fields.map((f) => Buffer.from(f, "base64")) };
}
