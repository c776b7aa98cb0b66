/**
 * Recipient stanzas (spec/FORMAT.md §3): each wraps the same 256-bit file key. The format knows
 * only their framing; what a type means lives in the keys layer behind two small interfaces.
 */
import type { ByteReader, ByteWriter } from "./bytes.js";
import { fail } from "./errors.js";

export const MAX_STANZAS = 128;
export const MAX_STANZA_FIELDS = 16;
export const MAX_FIELD_SIZE = 4096;
const TYPE_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;

export interface Stanza {
  readonly type: string;
  readonly fields: readonly Buffer[];
}

/** Wraps a file key for one recipient. `id` names it for humans and for removal. */
export interface Recipient {
  readonly id: string;
  wrap(fileKey: Uint8Array): Promise<Stanza>;
  /**
   * Optional: draws the file key itself (a KMS's GenerateDataKey, from the provider's RNG) and
   * returns it with its stanza; null when this recipient cannot, and the writer draws the key.
   */
  generate?(): Promise<{ fileKey: Buffer; stanza: Stanza } | null>;
  /** True when this stanza was produced for this recipient (used by rewrap --remove). */
  matches(stanza: Stanza): boolean;
}

/**
 * Unwraps a file key from one stanza. Returns null for "not my stanza" (wrong type, other
 * recipient); throws TensorSealError for a real failure (my stanza but it does not open).
 */
export interface Identity {
  readonly id: string;
  unwrap(stanza: Stanza): Promise<Buffer | null>;
}

export function encodeStanza(w: ByteWriter, s: Stanza): void {
  checkStanza(s);
  w.str8(s.type).u8(s.fields.length);
  for (const f of s.fields) w.bytes16(f);
}

export function decodeStanza(r: ByteReader): Stanza {
  const type = r.str8();
  if (!TYPE_PATTERN.test(type)) r.bad(`stanza type ${JSON.stringify(type)} is not [a-z0-9-]`);
  const n = r.u8();
  if (n > MAX_STANZA_FIELDS) r.bad(`stanza has ${n} fields, limit ${MAX_STANZA_FIELDS}`);
  const fields: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const f = r.bytes16();
    if (f.length > MAX_FIELD_SIZE) r.bad(`stanza field of ${f.length} bytes exceeds 4096`);
    fields.push(Buffer.from(f));
  }
  return { type, fields };
}

function checkStanza(s: Stanza): void {
  if (!TYPE_PATTERN.test(s.type)) fail("E_MALFORMED", `bad stanza type ${JSON.stringify(s.type)}`);
  if (s.fields.length > MAX_STANZA_FIELDS) fail("E_MALFORMED", "too many stanza fields");
  for (const f of s.fields) {
    if (f.length > MAX_FIELD_SIZE) fail("E_MALFORMED", "stanza field exceeds 4096 bytes");
  }
}

/**
 * Field accessor for type handlers: exact count and exact lengths, else a malformed error
 * naming the stanza type (so a truncated or padded stanza can never be half-accepted).
 */
export function expectFields(s: Stanza, sizes: readonly (number | null)[]): Buffer[] {
  if (s.fields.length !== sizes.length) {
    fail("E_MALFORMED", `${s.type} stanza has ${s.fields.length} fields, expected ${sizes.length}`);
  }
  return s.fields.map((f, i) => {
    const want = sizes[i];
    if (want !== null && want !== undefined && f.length !== want) {
      fail("E_MALFORMED", `${s.type} stanza field ${i} is ${f.length} bytes, expected ${want}`);
    }
    return f;
  });
}
