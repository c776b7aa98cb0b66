/**
 * Reading and unlocking the header of a sealed file on disk, in the order that fails closed:
 * parse (no key) → required context → unlock (header MAC) → payload length against the
 * geometry and the recorded length → key commitment. Only then may a chunk be decrypted.
 */
import type { FileHandle } from "node:fs/promises";
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
import { io, readExact } from "./fsutil.js";

/** Parses the header of an open file: the prefix first, to learn how long the header is. */
export async function readFileHeader(fh: FileHandle, size: number): Promise<ParsedHeader> {
  const head = await readExact(fh, Math.min(size, PREFIX_SIZE), 0);
  if (head.length < PREFIX_SIZE) return rejectShortHeader(head);
  const prefix = parsePrefix(head);
  if (size < prefix.headerLength) fail("E_TRUNCATED", "file ends inside the header");
  return parseHeader(await readExact(fh, prefix.headerLength, 0));
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
}

export async function unlockFile(
  fh: FileHandle,
  path: string,
  opts: UnlockOptions,
): Promise<UnlockedFile> {
  const { size } = await io(`stat ${path}`, () => fh.stat());
  const header = await readFileHeader(fh, size);
  checkExpectedContext(header.descriptor, opts.expectContext);
  const fileKey = await unlockFileKey(header, opts.identities);
  let keys: ChunkKeys | null = null;
  try {
    const plaintextLength = checkPayloadLength(header, size - header.headerLength);
    const prefix = await readExact(fh, PAYLOAD_PREFIX_SIZE, header.headerLength);
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
