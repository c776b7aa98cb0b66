/**
 * Reading and unlocking the header of a sealed file on disk, in the order that fails closed:
 * parse (no key) → required context → unlock (header MAC) → payload length against the
 * geometry and the recorded length → key commitment. Only then may a chunk be decrypted.
 */
import {
  type ChunkKeys,
  keysForPrefix,
  PAYLOAD_PREFIX_SIZE,
  wipeChunkKeys,
} from "../format/chunked.js";
import type { Descriptor } from "../format/descriptor.js";
import { fail } from "../format/errors.js";
import { payloadInputKey } from "../format/filekey.js";
import {
  MAGIC,
  type ParsedHeader,
  PREFIX_SIZE,
  parseHeader,
  parsePrefix,
} from "../format/header.js";
import { checkPayloadLength } from "../format/message.js";
import { payloadContext } from "../format/payload.js";
import type { Identity } from "../format/stanza.js";
import { unlockFileKey } from "../format/unlock.js";
import { descriptorSource, type RandomSource } from "./source.js";

/** Parses the header of an open file: the prefix first, to learn how long the header is. */
export function readFileHeader(fd: number, size: number): Promise<ParsedHeader> {
  return readSourceHeader(descriptorSource(fd, "", size));
}

/** readFileHeader over any source (a remote object reads the same two ranges). */
export async function readSourceHeader(src: RandomSource): Promise<ParsedHeader> {
  const size = src.size;
  const head = await src.read(0, Math.min(size, PREFIX_SIZE));
  if (head.length < PREFIX_SIZE) return rejectShortHeader(head);
  const prefix = parsePrefix(head);
  if (size < prefix.headerLength) fail("E_TRUNCATED", "file ends inside the header");
  return parseHeader(await src.read(0, prefix.headerLength));
}

/** A file shorter than the prefix: not ours if what is there is not the magic. */
export function rejectShortHeader(head: Buffer): never {
  checkMagicSoFar(head);
  return fail("E_TRUNCATED", "file ends inside the header");
}

/** Fails unless the bytes seen so far are a prefix of the magic (or start with all of it). */
export function checkMagicSoFar(head: Buffer): void {
  const n = Math.min(head.length, MAGIC.length);
  if (!head.subarray(0, n).equals(MAGIC.subarray(0, n))) {
    fail("E_NOT_TSEAL", "not a .tseal file (magic bytes do not match)");
  }
}

/** Every expected key must be present with the same value (the value is never echoed). */
export function checkExpectedContext(
  descriptor: Descriptor,
  expect: Readonly<Record<string, string>> | undefined,
): void {
  for (const [k, v] of Object.entries(expect ?? {})) {
    if (!Object.hasOwn(descriptor.context, k)) {
      fail("E_CONTEXT", `encryption context has no key ${JSON.stringify(k)}, which is required`);
    }
    if (descriptor.context[k] !== v) {
      fail("E_CONTEXT", `encryption context value for ${JSON.stringify(k)} does not match`);
    }
  }
}

export interface UnlockedFile {
  readonly header: ParsedHeader;
  readonly plaintextLength: number;
  /** Offset of sealed chunk 0. */
  readonly chunksOffset: number;
  /** The caller owns these and must wipe them (wipeChunkKeys). */
  readonly keys: ChunkKeys;
}

export interface UnlockOptions {
  readonly identities: readonly Identity[];
  readonly expectContext?: Readonly<Record<string, string>> | undefined;
  /** Refuse a public (integrity-only) file (E_NOT_ENCRYPTED, spec/FORMAT.md §2.5). */
  readonly requireEncrypted?: boolean | undefined;
}

/** A local file's descriptor (its caller stats it once, for its size, and closes it). */
export async function unlockFile(
  fd: number,
  path: string,
  size: number,
  opts: UnlockOptions,
): Promise<UnlockedFile> {
  return unlockSource(descriptorSource(fd, path, size), opts);
}

/** unlockFile over any source: the same checks in the same order. */
export async function unlockSource(src: RandomSource, opts: UnlockOptions): Promise<UnlockedFile> {
  const size = src.size;
  const header = await readSourceHeader(src);
  checkExpectedContext(header.descriptor, opts.expectContext);
  const fileKey = await unlockFileKey(header, opts.identities, opts);
  let keys: ChunkKeys | null = null;
  try {
    const plaintextLength = checkPayloadLength(header, size - header.headerLength);
    const prefix = await src.read(header.headerLength, PAYLOAD_PREFIX_SIZE);
    const inputKey = payloadInputKey(fileKey);
    try {
      keys = keysForPrefix(
        inputKey,
        prefix,
        payloadContext(header.descriptorBytes),
        header.descriptor.chunkSize,
      );
    } finally {
      inputKey.fill(0);
    }
    return {
      header,
      plaintextLength,
      chunksOffset: header.headerLength + PAYLOAD_PREFIX_SIZE,
      keys,
    };
  } catch (e) {
    if (keys) wipeChunkKeys(keys);
    throw e;
  } finally {
    fileKey.fill(0);
  }
}
