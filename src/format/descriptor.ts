/**
 * The descriptor (spec/FORMAT.md §2.2): immutable public facts about the payload. Its canonical
 * bytes are bound into the payload derivation and the header MAC, so editing it breaks both.
 */
import { ByteReader, ByteWriter } from "./bytes.js";
import { MAX_CHUNK_LOG2, MIN_CHUNK_LOG2 } from "./chunked.js";
import { fail } from "./errors.js";
import { TIER_LABEL, validateMetadataLabels } from "./metadata.js";
import { PUBLIC_TIER, SUITE_PUBLIC } from "./public.js";

export const SUITE_COBBLESTONE_AES256GCM_SHA512 = 1;
/** Integrity only (the `public` tier, spec §2.5): the same construction with GMAC chunk tags. */
export const SUITE_PUBLIC_INTEGRITY = SUITE_PUBLIC;
export const MAX_DESCRIPTOR_SIZE = 65536;
export const MAX_MAP_ENTRIES = 64;
export const MAX_CONTENT_TYPE = 255;
const FLAG_LENGTH_KNOWN = 1;

export type StringMap = Readonly<Record<string, string>>;

export interface Descriptor {
  readonly suite: number;
  readonly chunkSize: number;
  /** null when sealing a stream of unknown length (stdin). */
  readonly plaintextLength: number | null;
  readonly contentType: string;
  /** Encryption context: bound into the payload; a reader may require exact values. */
  readonly context: StringMap;
  /** Public labels: informational metadata (model name, owner), visible without a key. */
  readonly labels: StringMap;
}

export function encodeDescriptor(d: Descriptor): Buffer {
  validateDescriptor(d);
  const w = new ByteWriter()
    .u16(d.suite)
    .u8(Math.log2(d.chunkSize))
    .u8(d.plaintextLength === null ? 0 : FLAG_LENGTH_KNOWN)
    .u64(d.plaintextLength ?? 0)
    .str16(d.contentType);
  writeMap(w, d.context);
  writeMap(w, d.labels);
  const out = w.finish();
  if (out.length > MAX_DESCRIPTOR_SIZE) fail("E_MALFORMED", "descriptor exceeds 64 KiB");
  return out;
}

export function decodeDescriptor(buf: Buffer): Descriptor {
  const r = new ByteReader(buf, "descriptor");
  const suite = r.u16();
  if (suite !== SUITE_COBBLESTONE_AES256GCM_SHA512 && suite !== SUITE_PUBLIC_INTEGRITY) {
    fail("E_UNSUPPORTED", `suite ${suite} is not supported (this reader knows suites 1 and 2)`);
  }
  const log2 = r.u8();
  if (log2 < MIN_CHUNK_LOG2 || log2 > MAX_CHUNK_LOG2) r.bad(`chunk size 2^${log2} out of range`);
  const flags = r.u8();
  if ((flags & ~FLAG_LENGTH_KNOWN) !== 0) r.bad(`unknown flags 0x${flags.toString(16)}`);
  const length = r.u64();
  if (!(flags & FLAG_LENGTH_KNOWN) && length !== 0) r.bad("length must be 0 when not known");
  const contentType = r.str16();
  const context = readMap(r, "context");
  const labels = readMap(r, "labels");
  r.end();
  const d: Descriptor = {
    suite,
    chunkSize: 2 ** log2,
    plaintextLength: flags & FLAG_LENGTH_KNOWN ? length : null,
    contentType,
    context,
    labels,
  };
  validateDescriptor(d);
  return d;
}

function validateDescriptor(d: Descriptor): void {
  if (d.suite !== SUITE_COBBLESTONE_AES256GCM_SHA512 && d.suite !== SUITE_PUBLIC_INTEGRITY) {
    fail("E_UNSUPPORTED", `suite ${d.suite} is not supported`);
  }
  if (Buffer.byteLength(d.contentType) > MAX_CONTENT_TYPE) {
    fail("E_MALFORMED", `content type exceeds ${MAX_CONTENT_TYPE} bytes`);
  }
  for (const [name, map] of [
    ["context", d.context],
    ["labels", d.labels],
  ] as const) {
    if (Object.keys(map).length > MAX_MAP_ENTRIES) {
      fail("E_MALFORMED", `${name} has more than ${MAX_MAP_ENTRIES} entries`);
    }
    for (const k of Object.keys(map)) {
      if (k.length === 0) fail("E_MALFORMED", `${name} has an empty key`);
    }
  }
  validateMetadataLabels(d.labels);
  // An unencrypted file always says so in its tier too (spec §2.5): a reader or an inventory
  // that only looks at tiers never mistakes it for an encrypted one.
  if (d.suite === SUITE_PUBLIC_INTEGRITY && d.labels[TIER_LABEL] !== PUBLIC_TIER) {
    fail("E_MALFORMED", `a suite-2 (integrity-only) file must carry ${TIER_LABEL} = public`);
  }
}

/** Keys sorted by their UTF-8 bytes; strictly ascending on read (canonical, no duplicates). */
function writeMap(w: ByteWriter, map: StringMap): void {
  const keys = Object.keys(map).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  w.u16(keys.length);
  for (const k of keys) w.str16(k).str16(map[k]!);
}

function readMap(r: ByteReader, name: string): StringMap {
  const n = r.u16();
  if (n > MAX_MAP_ENTRIES) r.bad(`${name} has ${n} entries, limit ${MAX_MAP_ENTRIES}`);
  const out: Record<string, string> = Object.create(null);
  let prev: Buffer | null = null;
  for (let i = 0; i < n; i++) {
    const k = r.str16();
    const kb = Buffer.from(k);
    if (prev && Buffer.compare(prev, kb) >= 0) r.bad(`${name} keys not strictly ascending`);
    prev = kb;
    out[k] = r.str16();
  }
  return out;
}
