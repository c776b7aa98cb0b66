/**
 * Whole-buffer seal and open: the reference composition of header and payload that the engine
 * streams and parallelises, and that spec/vectors are generated from. Pure: bytes in, bytes out.
 */
import {
  type Descriptor,
  encodeDescriptor,
  SUITE_COBBLESTONE_AES256GCM_SHA512,
} from "./descriptor.js";
import { fail } from "./errors.js";
import { payloadInputKey } from "./filekey.js";
import { PayloadGeometry } from "./geometry.js";
import {
  DEFAULT_SLOT_CAPACITY,
  encodeHeader,
  MAGIC,
  type ParsedHeader,
  PREFIX_SIZE,
  parseHeader,
} from "./header.js";
import { PayloadOpener, PayloadSealer, payloadContext } from "./payload.js";
import type { Stanza } from "./stanza.js";

export const DEFAULT_CHUNK_SIZE = 1 << 20;

export interface DescriptorInit {
  /** 1 (default): encrypted; 2: integrity only, the `public` tier (spec §2.5). */
  suite?: number;
  chunkSize?: number;
  contentType?: string;
  context?: Record<string, string>;
  labels?: Record<string, string>;
}

export function makeDescriptor(init: DescriptorInit, plaintextLength: number | null): Descriptor {
  return {
    suite: init.suite ?? SUITE_COBBLESTONE_AES256GCM_SHA512,
    chunkSize: init.chunkSize ?? DEFAULT_CHUNK_SIZE,
    plaintextLength,
    contentType: init.contentType ?? "application/octet-stream",
    context: init.context ?? {},
    labels: init.labels ?? {},
  };
}

/** Seals `plaintext` for the given stanzas (already wrapping `fileKey`). */
export function sealMessage(
  plaintext: Buffer,
  fileKey: Uint8Array,
  stanzas: readonly Stanza[],
  init: DescriptorInit = {},
  opts: { salt?: Uint8Array; slotCapacity?: number } = {},
): Buffer {
  const descriptorBytes = encodeDescriptor(makeDescriptor(init, plaintext.length));
  const header = encodeHeader(
    fileKey,
    descriptorBytes,
    stanzas,
    opts.slotCapacity ?? DEFAULT_SLOT_CAPACITY,
  );
  const inputKey = payloadInputKey(fileKey);
  const sealer = new PayloadSealer(
    inputKey,
    payloadContext(descriptorBytes),
    makeDescriptor(init, 0).chunkSize,
    opts.salt,
  );
  inputKey.fill(0);
  const chunks = sealer.push(plaintext);
  return Buffer.concat([header, sealer.prefix, ...chunks, sealer.finish()]);
}

/** Reads the header of a whole-file buffer (no key needed). */
export function readHeader(file: Buffer): ParsedHeader {
  if (file.length < PREFIX_SIZE) {
    const head = file.subarray(0, MAGIC.length);
    if (!MAGIC.subarray(0, head.length).equals(head)) {
      fail("E_NOT_TSEAL", "not a .tseal file (magic bytes do not match)");
    }
    fail("E_TRUNCATED", "file ends inside the header");
  }
  return parseHeader(file);
}

/** Checks the descriptor's recorded length against the payload size before any decryption. */
export function checkPayloadLength(header: ParsedHeader, payloadLength: number): number {
  const length = new PayloadGeometry(header.descriptor.chunkSize).plaintextLength(payloadLength);
  const recorded = header.descriptor.plaintextLength;
  if (recorded !== null && recorded !== length) {
    fail(
      recorded > length ? "E_TRUNCATED" : "E_TRAILING",
      `payload holds ${length} bytes but the descriptor records ${recorded}`,
    );
  }
  return length;
}

/** Opens a whole-file buffer with an already unlocked (header-MAC verified) file key. */
export function openMessage(file: Buffer, header: ParsedHeader, fileKey: Uint8Array): Buffer {
  const payload = file.subarray(header.headerLength);
  checkPayloadLength(header, payload.length);
  const inputKey = payloadInputKey(fileKey);
  const opener = new PayloadOpener(
    inputKey,
    payloadContext(header.descriptorBytes),
    header.descriptor.chunkSize,
  );
  inputKey.fill(0);
  const parts = opener.push(Buffer.from(payload));
  parts.push(opener.finish());
  return Buffer.concat(parts);
}
