/**
 * The .tseal header (spec/FORMAT.md §2): a fixed prefix, the descriptor, and two fixed-size
 * header slots. Rewrap writes the inactive slot with a higher generation, syncs, then wipes the
 * old slot, so a crash leaves one intact slot and the payload is never rewritten.
 */
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { ByteReader, ByteWriter } from "./bytes.js";
import { type Descriptor, decodeDescriptor, MAX_DESCRIPTOR_SIZE } from "./descriptor.js";
import { fail } from "./errors.js";
import { checkHeaderMac, computeHeaderMac, HEADER_MAC_SIZE } from "./filekey.js";
import { primitivesBackend, sha256 } from "./primitives.js";
import { checkSuiteStanzas } from "./public.js";
import { decodeStanza, encodeStanza, MAX_STANZAS, type Stanza } from "./stanza.js";

export const MAGIC = Buffer.from([0x89, 0x54, 0x53, 0x45, 0x41, 0x4c, 0x0d, 0x0a]); // \x89TSEAL\r\n
export const FORMAT_VERSION = 1;
export const PREFIX_SIZE = 20;
export const SLOT_ALIGN = 4096;
export const MIN_SLOT_CAPACITY = 4096;
export const MAX_SLOT_CAPACITY = 1 << 20;
export const DEFAULT_SLOT_CAPACITY = 8192;
const CHECKSUM_SIZE = 32;
/** bodyLength u32 + MAC + checksum around the body. */
const SLOT_OVERHEAD = 4 + HEADER_MAC_SIZE + CHECKSUM_SIZE;

export interface Prefix {
  readonly descriptorLength: number;
  readonly slotCapacity: number;
  /** Offset of the payload = total header length. */
  readonly headerLength: number;
}

export interface SlotContent {
  readonly generation: number;
  readonly stanzas: readonly Stanza[];
}

export type InactiveSlot =
  | { readonly kind: "empty" }
  | { readonly kind: "damaged" }
  | { readonly kind: "stale"; readonly generation: number; readonly stanzas: readonly Stanza[] };

export interface ParsedHeader extends Prefix {
  readonly prefixBytes: Buffer;
  readonly descriptorBytes: Buffer;
  readonly descriptor: Descriptor;
  readonly activeSlot: 0 | 1;
  readonly generation: number;
  readonly stanzas: readonly Stanza[];
  /** True when the other slot still holds an intact older generation (an interrupted rewrap). */
  readonly staleSlot: boolean;
  /**
   * What the other (inactive) slot holds: nothing (all zero), an intact older generation left by
   * an interrupted rewrap, or damaged bytes (a torn write). Only "empty" is clean: the other two
   * still carry stanzas of an older recipient list (spec §2.3), which every writer clears.
   */
  readonly inactiveSlot: InactiveSlot;
  readonly bodyBytes: Buffer;
  readonly mac: Buffer;
}

export function slotOffset(p: Prefix, slot: 0 | 1): number {
  return PREFIX_SIZE + p.descriptorLength + slot * p.slotCapacity;
}

export function encodePrefix(descriptorLength: number, slotCapacity: number): Buffer {
  checkSlotCapacity(slotCapacity);
  return new ByteWriter()
    .raw(MAGIC)
    .u8(FORMAT_VERSION)
    .raw(Buffer.alloc(3))
    .u32(descriptorLength)
    .u32(slotCapacity)
    .finish();
}

export function parsePrefix(buf: Buffer): Prefix {
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    fail("E_NOT_TSEAL", "not a .tseal file (magic bytes do not match)");
  }
  const r = new ByteReader(buf.subarray(0, PREFIX_SIZE), "prefix");
  r.bytes(MAGIC.length);
  const version = r.u8();
  if (version !== FORMAT_VERSION) {
    fail("E_UNSUPPORTED", `format version ${version} is not supported (this reader knows 1)`);
  }
  if (!r.bytes(3).equals(Buffer.alloc(3))) r.bad("reserved bytes must be zero");
  const descriptorLength = r.u32();
  if (descriptorLength === 0 || descriptorLength > MAX_DESCRIPTOR_SIZE) {
    r.bad(`descriptor length ${descriptorLength} out of range`);
  }
  const slotCapacity = r.u32();
  checkSlotCapacity(slotCapacity);
  return {
    descriptorLength,
    slotCapacity,
    headerLength: PREFIX_SIZE + descriptorLength + 2 * slotCapacity,
  };
}

function checkSlotCapacity(c: number): void {
  if (c < MIN_SLOT_CAPACITY || c > MAX_SLOT_CAPACITY || c % SLOT_ALIGN !== 0) {
    fail("E_MALFORMED", `slot capacity ${c} must be a multiple of 4096 from 4 KiB to 1 MiB`);
  }
}

export function encodeSlotBody(content: SlotContent): Buffer {
  if (content.stanzas.length === 0) fail("E_USAGE", "a file needs at least one recipient");
  if (content.stanzas.length > MAX_STANZAS) {
    fail("E_USAGE", `${content.stanzas.length} stanzas exceed the limit of ${MAX_STANZAS}`);
  }
  const w = new ByteWriter().u64(content.generation).u16(content.stanzas.length);
  for (const s of content.stanzas) encodeStanza(w, s);
  return w.finish();
}

/** The bytes the header MAC covers: prefix, descriptor and the active slot's body. */
export function macInput(prefix: Buffer, descriptor: Buffer, body: Buffer): Buffer[] {
  return [prefix, descriptor, body];
}

/** A full slot: bodyLength, body, MAC, checksum, zero padding to the slot capacity. */
export function encodeSlot(
  fileKey: Uint8Array,
  prefix: Buffer,
  descriptor: Buffer,
  content: SlotContent,
  capacity: number,
): Buffer {
  // Seal, rewrap and reseal alike: a public file's only stanza is its published key, and an
  // encrypted file never publishes its key (spec §2.5).
  const { suite } = decodeDescriptor(descriptor);
  checkSuiteStanzas(suite, content.stanzas, "writing the header", "E_USAGE");
  const body = encodeSlotBody(content);
  if (body.length + SLOT_OVERHEAD > capacity) {
    fail("E_USAGE", `header slot is full (${body.length} bytes of stanzas, capacity ${capacity})`);
  }
  const mac = computeHeaderMac(fileKey, macInput(prefix, descriptor, body));
  const slot = Buffer.alloc(capacity);
  slot.writeUInt32BE(body.length, 0);
  body.copy(slot, 4);
  mac.copy(slot, 4 + body.length);
  slotChecksum(slot, body.length).copy(slot, 4 + body.length + HEADER_MAC_SIZE);
  return slot;
}

/**
 * SHA-256 of a slot's covered bytes (slotChecksum): the native addon's OpenSSL (primitives.ts),
 * else noble's rather than node:crypto's: a slot is a few KiB, and `inspect` needs nothing else
 * from node:crypto, whose loading was about a fifth of that command's start-up (issue 11).
 */
const slotSha256: (data: Uint8Array) => Uint8Array =
  primitivesBackend === "native" ? sha256 : nobleSha256;

/** SHA-256 detects torn writes without a key; the MAC is what authenticates. */
function slotChecksum(slot: Buffer, bodyLength: number): Buffer {
  const digest = slotSha256(slot.subarray(0, 4 + bodyLength + HEADER_MAC_SIZE));
  return Buffer.from(digest.buffer, digest.byteOffset, digest.length);
}

/**
 * Every byte zero, by one memcmp of the buffer against itself shifted by one (all bytes equal)
 * and a zero first byte: a JS callback per byte of a slot cost ~1 ms of every command's start-up.
 */
function allZero(b: Buffer): boolean {
  return b.length === 0 || (b[0] === 0 && b.subarray(1).equals(b.subarray(0, b.length - 1)));
}

type SlotState =
  | { kind: "empty" }
  | { kind: "damaged" }
  | { kind: "intact"; generation: number; stanzas: Stanza[]; body: Buffer; mac: Buffer };

function readSlot(slot: Buffer, index: number): SlotState {
  if (allZero(slot)) return { kind: "empty" };
  const bodyLength = slot.readUInt32BE(0);
  if (bodyLength === 0 || bodyLength + SLOT_OVERHEAD > slot.length) return { kind: "damaged" };
  const sumAt = 4 + bodyLength + HEADER_MAC_SIZE;
  const checksum = slot.subarray(sumAt, sumAt + CHECKSUM_SIZE);
  if (!slotChecksum(slot, bodyLength).equals(checksum)) return { kind: "damaged" };
  // From here the slot was completely written by a writer, so any violation is an error.
  const r = new ByteReader(slot.subarray(4, 4 + bodyLength), `header slot ${index}`);
  const generation = r.u64();
  if (generation === 0) r.bad("generation must be at least 1");
  const count = r.u16();
  if (count === 0 || count > MAX_STANZAS) r.bad(`stanza count ${count} out of range 1..128`);
  const stanzas: Stanza[] = [];
  for (let i = 0; i < count; i++) stanzas.push(decodeStanza(r));
  r.end();
  if (!allZero(slot.subarray(sumAt + CHECKSUM_SIZE))) {
    fail("E_MALFORMED", `header slot ${index}: padding must be zero`);
  }
  return {
    kind: "intact",
    generation,
    stanzas,
    body: Buffer.from(slot.subarray(4, 4 + bodyLength)),
    mac: Buffer.from(slot.subarray(4 + bodyLength, sumAt)),
  };
}

/** Parses a whole header (`buf` holds at least prefix.headerLength bytes). Needs no key. */
export function parseHeader(buf: Buffer): ParsedHeader {
  const prefix = parsePrefix(buf);
  if (buf.length < prefix.headerLength) fail("E_TRUNCATED", "file ends inside the header");
  const descriptorBytes = Buffer.from(
    buf.subarray(PREFIX_SIZE, PREFIX_SIZE + prefix.descriptorLength),
  );
  const descriptor = decodeDescriptor(descriptorBytes);
  const slots = ([0, 1] as const).map((i) => {
    const at = slotOffset(prefix, i);
    return readSlot(buf.subarray(at, at + prefix.slotCapacity), i);
  });
  const intact = slots.flatMap((s, i) =>
    s.kind === "intact" ? [{ ...s, index: i as 0 | 1 }] : [],
  );
  if (intact.length === 0) fail("E_MALFORMED", "no intact header slot (the header is damaged)");
  if (intact.length === 2 && intact[0]!.generation === intact[1]!.generation) {
    fail("E_MALFORMED", "both header slots claim the same generation");
  }
  // Both intact slots follow the suite's stanza rules (§2.5): a stale slot can become active.
  for (const s of intact) checkSuiteStanzas(descriptor.suite, s.stanzas, `header slot ${s.index}`);
  intact.sort((a, b) => b.generation - a.generation);
  const active = intact[0]!;
  const other = slots[active.index === 0 ? 1 : 0]!;
  return {
    ...prefix,
    prefixBytes: Buffer.from(buf.subarray(0, PREFIX_SIZE)),
    descriptorBytes,
    descriptor,
    activeSlot: active.index,
    generation: active.generation,
    stanzas: active.stanzas,
    staleSlot: other.kind === "intact",
    inactiveSlot:
      other.kind === "intact"
        ? { kind: "stale", generation: other.generation, stanzas: other.stanzas }
        : { kind: other.kind },
    bodyBytes: active.body,
    mac: active.mac,
  };
}

export function verifyHeader(h: ParsedHeader, fileKey: Uint8Array): void {
  checkHeaderMac(fileKey, macInput(h.prefixBytes, h.descriptorBytes, h.bodyBytes), h.mac);
}

/** A complete new header: prefix, descriptor, slot 0 at generation 1, slot 1 empty. */
export function encodeHeader(
  fileKey: Uint8Array,
  descriptorBytes: Buffer,
  stanzas: readonly Stanza[],
  slotCapacity = DEFAULT_SLOT_CAPACITY,
): Buffer {
  const prefix = encodePrefix(descriptorBytes.length, slotCapacity);
  const slot0 = encodeSlot(
    fileKey,
    prefix,
    descriptorBytes,
    { generation: 1, stanzas },
    slotCapacity,
  );
  return Buffer.concat([prefix, descriptorBytes, slot0, Buffer.alloc(slotCapacity)]);
}
