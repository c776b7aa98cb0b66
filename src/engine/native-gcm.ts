/**
 * Optional native batch AES-256-GCM (native/tseal_gcm.cc, built at install time by
 * scripts/build-native.mjs). It calls the OpenSSL inside the node binary, like node:crypto, but
 * seals or opens a whole batch of chunks into a caller-provided buffer per call instead of
 * allocating an output per cipher.update(), which roughly doubles per-thread throughput.
 *
 * It can also map a regular input file (mapFile), so the engine seals and verifies straight out
 * of the page cache instead of copying every byte out with pread first.
 *
 * TENSORSEAL_NATIVE=0 forces the node:crypto path (the addon is loaded in
 * src/format/native-addon.ts, which says how CI refuses a missing one).
 */
import { missing, nativeAddon } from "../format/native-addon.js";

export { NATIVE_ADDON_PATH } from "../format/native-addon.js";

export interface NativeGcm {
  /**
   * Seals `chunkCount` chunks (all `chunkSize` bytes but the last, which may be shorter or
   * empty) of `src[srcOffset, +plaintextLength)` into `dst` at `dstOffset` as ciphertext || tag
   * per chunk; chunk i uses nonce chunkNonce(baseNonce, firstIndex + i). Returns bytes written.
   */
  sealBatch(
    key: Uint8Array,
    baseNonce: Uint8Array,
    firstIndex: number,
    chunkCount: number,
    chunkSize: number,
    src: Uint8Array,
    srcOffset: number,
    plaintextLength: number,
    dst: Uint8Array,
    dstOffset: number,
  ): number;
  /**
   * Opens `chunkCount` sealed chunks from `src[srcOffset, +sealedLength)` into `dst` at
   * `dstOffset` (null: verify only). Returns the plaintext bytes, or -1-k for the first chunk k
   * (absolute index) that failed authentication; that chunk's output is wiped.
   */
  openBatch(
    key: Uint8Array,
    baseNonce: Uint8Array,
    firstIndex: number,
    chunkCount: number,
    chunkSize: number,
    src: Uint8Array,
    srcOffset: number,
    sealedLength: number,
    dst: Uint8Array | null,
    dstOffset: number,
  ): number;
  /**
   * sealBatch in place over `buf[offset, +sealedLength)` in the sealed layout: chunk i's
   * plaintext sits at offset + i * (chunkSize + 16); its tag is written after it.
   */
  sealInPlace(
    key: Uint8Array,
    baseNonce: Uint8Array,
    firstIndex: number,
    chunkCount: number,
    chunkSize: number,
    buf: Uint8Array,
    offset: number,
    sealedLength: number,
  ): number;
  /** openBatch in place: each chunk's plaintext is left where its ciphertext was. */
  openInPlace(
    key: Uint8Array,
    baseNonce: Uint8Array,
    firstIndex: number,
    chunkCount: number,
    chunkSize: number,
    buf: Uint8Array,
    offset: number,
    sealedLength: number,
  ): number;
  /**
   * A read-only mmap of the regular file `fd`'s bytes [offset, +length) (length >= 1; any
   * offset: the mapping starts at the page below it). RangeError if the file is shorter than
   * offset + length now; an Error with code ERR_TSEAL_MAP if it is not a regular file or mmap
   * fails. Read it only through sealBatch/openBatch: they turn the SIGBUS of a file that shrank
   * under the mapping into an Error with code ERR_TSEAL_INPUT_CHANGED; JS reading the bytes
   * itself would crash the process instead. Unmapped by unmap(), or when garbage-collected.
   */
  mapFile(fd: number, offset: number, length: number): ArrayBuffer;
  /**
   * Detaches a buffer from mapFile (its views then have length 0) and unmaps it: true, or false
   * if it was already unmapped. TypeError for any other ArrayBuffer.
   */
  unmap(mapping: ArrayBuffer): boolean;
  /**
   * Gives the O_TMPFILE file `fd` the name `path` (linkat through /proc/self/fd). Never replaces
   * an existing path: an Error with code EEXIST (other errno names likewise).
   */
  linkFd(fd: number, path: string): void;
  /**
   * sealBatch / openBatch on a libuv pool thread: arguments are validated (and thrown) at the
   * call; `callback(error, result)` runs on the JS thread. `src` and `dst` must be left alone
   * until then. Optional: an older build lacks them (the stream paths then stay synchronous).
   */
  sealBatchAsync?(...args: [...BatchArgs, AsyncCallback]): void;
  openBatchAsync?(...args: [...BatchArgs, AsyncCallback]): void;
  /** The pipe `fd`'s new capacity (F_SETPIPE_SZ), or -1 (not a pipe, refused). Optional. */
  setPipeSize?(fd: number, bytes: number): number;
  /** `length` bytes of memory starting on a 4096-byte boundary (O_DIRECT writes). Optional. */
  alignedBuffer?(length: number): ArrayBuffer;
}

type BatchArgs = [
  key: Uint8Array,
  baseNonce: Uint8Array,
  firstIndex: number,
  chunkCount: number,
  chunkSize: number,
  src: Uint8Array,
  srcOffset: number,
  length: number,
  dst: Uint8Array | null,
  dstOffset: number,
];
type AsyncCallback = (error: (Error & { code?: string }) | null, result: number) => void;

/** sealBatchAsync / openBatchAsync as a promise of the addon's result. */
export function batchAsync(
  fn: (...args: [...BatchArgs, AsyncCallback]) => void,
  ...args: BatchArgs
): Promise<number> {
  return new Promise((resolve, reject) =>
    fn(...args, (error, result) => (error ? reject(error) : resolve(result))),
  );
}

function load(): NativeGcm | null {
  const m = nativeAddon as Partial<NativeGcm> | null;
  if (!m) return null;
  const fns = [
    "sealBatch",
    "openBatch",
    "sealInPlace",
    "openInPlace",
    "mapFile",
    "unmap",
    "linkFd",
  ] as const;
  if (fns.every((f) => typeof m[f] === "function")) return m as NativeGcm;
  return missing("it is an older build without sealInPlace/openInPlace/mapFile/linkFd");
}

export const nativeGcm: NativeGcm | null = load();

/**
 * TENSORSEAL_MMAP=0 keeps the addon but reads regular files with pread instead of mapping them
 * (for comparison, or a file system whose mappings misbehave).
 */
export const mapInputs = process.env["TENSORSEAL_MMAP"] !== "0";
