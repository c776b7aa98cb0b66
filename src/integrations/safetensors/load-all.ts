/**
 * Full load of a sealed safetensors file: the engine decrypts the whole payload once, in
 * parallel, into one buffer (openToMemory), then every tensor is a typed-array view into it. This is
 * the sealed twin of safetensors' load_file: one copy of the model in memory, no per-tensor
 * reads, no intermediate buffers beyond one 8 MiB read buffer per thread.
 *
 * Every chunk, the final one included (which authenticates the length), is authenticated
 * before the buffer is handed out; on any failure the buffer is wiped and the first error is
 * thrown. For one tensor at a time use openSealedSafetensors (random access).
 *
 * From an `s3://` or `https://` URL the payload comes as one streamed GET (after the probe of
 * the header), each 8 MiB batch decrypted on pool threads straight into the buffer as it
 * arrives (engine/open-source.ts, openSourceToMemory): no local copy, no second buffer.
 */
import { endianness } from "node:os";
import { openSourceToMemory, openToMemory } from "../../engine/index.js";
import { fail } from "../../format/errors.js";
import type { Identity } from "../../format/stanza.js";
import { type TensorArray, toTypedArray, viewTypedArray } from "./dtypes.js";
import { LENGTH_PREFIX_SIZE, parseHeader, readHeaderLength } from "./header.js";
import type { TensorMeta } from "./sealed.js";

export interface LoadSafetensorsOptions {
  readonly expectContext?: Readonly<Record<string, string>>;
  /**
   * Threads decrypting, the main thread included (default: availableParallelism()); a local
   * file only (from a URL, batches are decrypted on the libuv pool as they arrive).
   */
  readonly threads?: number;
}

export interface LoadedSafetensors {
  readonly metadata: Readonly<Record<string, string>>;
  /** name → dtype, shape, byte length; in file order. */
  readonly tensors: Readonly<Record<string, TensorMeta>>;
  /** name → typed array (a view into `buffer`; F16/BF16/F8 as raw bits, see dtypes.ts). */
  readonly arrays: Map<string, TensorArray>;
  /**
   * The decrypted payload the arrays view (the safetensors header bytes in it are zeroed).
   * Wipe it with `new Uint8Array(buffer).fill(0)` when done with the weights.
   */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** Plaintext bytes decrypted: the whole payload, once. */
  readonly decryptedBytes: number;
}

/**
 * Decrypts the whole sealed safetensors file (a local path, or an s3:// / https:// URL) into
 * one buffer and returns tensor views.
 */
export async function loadSealedSafetensors(
  path: string,
  identities: readonly Identity[],
  opts: LoadSafetensorsOptions = {},
): Promise<LoadedSafetensors> {
  if (endianness() !== "LE") fail("E_UNSUPPORTED", "safetensors needs a little-endian host");
  const { buffer } = (await isUrl(path))
    ? await loadRemote(path, identities, opts)
    : await openToMemory(path, {
        identities,
        expectContext: opts.expectContext,
        threads: opts.threads,
      });
  const out = new Uint8Array(buffer);
  try {
    return views(buffer, out, out.length);
  } catch (e) {
    out.fill(0);
    throw e;
  }
}

async function isUrl(path: string): Promise<boolean> {
  return (await import("../objstore/url.js")).isObjectUrl(path);
}

async function loadRemote(
  url: string,
  identities: readonly Identity[],
  opts: LoadSafetensorsOptions,
): Promise<{ buffer: ArrayBuffer }> {
  const { openObjectSource } = await import("../objstore/index.js");
  const src = await openObjectSource(url);
  try {
    const { buffer } = await openSourceToMemory(src, {
      identities,
      expectContext: opts.expectContext,
    });
    return { buffer: buffer.buffer as ArrayBuffer };
  } finally {
    await src.close();
  }
}

function views(
  buffer: ArrayBuffer | SharedArrayBuffer,
  out: Uint8Array,
  total: number,
): LoadedSafetensors {
  const n = readHeaderLength(out.subarray(0, Math.min(LENGTH_PREFIX_SIZE, total)), total);
  const header = parseHeader(
    out.subarray(LENGTH_PREFIX_SIZE, LENGTH_PREFIX_SIZE + n),
    total - LENGTH_PREFIX_SIZE - n,
  );
  out.fill(0, 0, header.dataStart);
  const tensors: Record<string, TensorMeta> = Object.create(null);
  const arrays = new Map<string, TensorArray>();
  for (const [name, t] of header.tensors) {
    tensors[name] = { dtype: t.dtype, shape: t.shape, byteLength: t.byteLength };
    const at = header.dataStart + t.dataOffsets[0];
    arrays.set(
      name,
      viewTypedArray(t.dtype, buffer, at, t.byteLength) ??
        toTypedArray(t.dtype, out.subarray(at, at + t.byteLength)),
    );
  }
  return { metadata: header.metadata, tensors, arrays, buffer, decryptedBytes: total };
}
