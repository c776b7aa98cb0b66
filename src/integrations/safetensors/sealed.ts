/**
 * Lazy access to a sealed safetensors file. Tensor names, shapes and metadata are secret too,
 * so they come only from decrypting the first bytes of the payload; `getTensor` then decrypts
 * only the chunks that cover one tensor (SealedFile.readRange). Nothing is written to disk.
 * For a full load, loadSealedSafetensors (load-all.ts) decrypts the payload once, in parallel.
 */
import { endianness } from "node:os";
import { type DecryptStats, type RandomSource, SealedFile } from "../../engine/index.js";
import { fail } from "../../format/errors.js";
import type { Identity } from "../../format/stanza.js";
import { type Dtype, type TensorArray, toTypedArray } from "./dtypes.js";
import {
  LENGTH_PREFIX_SIZE,
  parseHeader,
  readHeaderLength,
  type SafetensorsHeader,
} from "./header.js";

export interface TensorMeta {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly byteLength: number;
}

export interface SealedSafetensors {
  readonly metadata: Readonly<Record<string, string>>;
  /** name → dtype, shape, byte length; in file order. */
  readonly tensors: Readonly<Record<string, TensorMeta>>;
  /** Decryption counters of the underlying sealed file (chunks and bytes since open). */
  readonly stats: DecryptStats;
  /** The tensor as a typed array (F16/BF16/F8 as raw bits; see dtypes.ts). */
  getTensor(name: string): Promise<TensorArray>;
  /** The tensor's raw little-endian bytes (a fresh buffer the caller may wipe). */
  getTensorBytes(name: string): Promise<Buffer>;
  close(): Promise<void>;
}

export interface OpenSafetensorsOptions {
  readonly expectContext?: Readonly<Record<string, string>>;
}

/**
 * `path`: a local file, an `s3://` or `https://` URL (ranged reads of the header and of each
 * tensor's chunks only: integrations/objstore), or any RandomSource (owned from here on).
 */
export async function openSealedSafetensors(
  path: string | RandomSource,
  identities: readonly Identity[],
  opts: OpenSafetensorsOptions = {},
): Promise<SealedSafetensors> {
  if (endianness() !== "LE") fail("E_UNSUPPORTED", "safetensors needs a little-endian host");
  const file = await openAny(path, identities, opts);
  try {
    return lazyTensors(file, await readSealedHeader(file));
  } catch (e) {
    await file.close();
    throw e;
  }
}

async function openAny(
  path: string | RandomSource,
  identities: readonly Identity[],
  opts: OpenSafetensorsOptions,
): Promise<SealedFile> {
  if (typeof path !== "string") return SealedFile.openSource(path, identities, opts);
  const { isObjectUrl } = await import("../objstore/url.js");
  if (!isObjectUrl(path)) return SealedFile.open(path, identities, opts);
  const { openObjectSource } = await import("../objstore/index.js");
  return SealedFile.openSource(await openObjectSource(path), identities, opts);
}

/** Decrypts and parses the safetensors header at the start of the plaintext. */
export async function readSealedHeader(file: SealedFile): Promise<SafetensorsHeader> {
  const size = file.plaintextLength;
  const prefix = await file.readRange(0, Math.min(LENGTH_PREFIX_SIZE, size));
  const n = readHeaderLength(prefix, size);
  const json = await file.readRange(LENGTH_PREFIX_SIZE, n);
  try {
    return parseHeader(json, size - LENGTH_PREFIX_SIZE - n);
  } finally {
    json.fill(0);
  }
}

function lazyTensors(file: SealedFile, header: SafetensorsHeader): SealedSafetensors {
  const tensors: Record<string, TensorMeta> = Object.create(null);
  for (const [name, t] of header.tensors) {
    tensors[name] = { dtype: t.dtype, shape: t.shape, byteLength: t.byteLength };
  }
  const bytesOf = async (name: string): Promise<Buffer> => {
    const t = Object.hasOwn(tensors, name) ? header.tensors.get(name) : undefined;
    if (!t) return fail("E_USAGE", `no tensor named ${JSON.stringify(name)} in this file`);
    const plain = await file.readRange(header.dataStart + t.dataOffsets[0], t.byteLength);
    const copy = Buffer.from(plain);
    plain.fill(0);
    return copy;
  };
  return {
    metadata: header.metadata,
    tensors,
    stats: file.stats,
    getTensorBytes: bytesOf,
    async getTensor(name) {
      const t = Object.hasOwn(tensors, name) ? header.tensors.get(name) : undefined;
      if (!t) return fail("E_USAGE", `no tensor named ${JSON.stringify(name)} in this file`);
      // One copy, from the decrypted chunks into the aligned array (no intermediate Buffer).
      const plain = await file.readRange(header.dataStart + t.dataOffsets[0], t.byteLength);
      try {
        return toTypedArray(t.dtype, plain);
      } finally {
        plain.fill(0);
      }
    },
    close: () => file.close(),
  };
}
