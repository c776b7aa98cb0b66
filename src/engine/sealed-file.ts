/**
 * Random access to a sealed file: open once (header MAC, length checks, commitment, and the
 * final chunk decrypted so the plaintext length is authenticated), then readRange decrypts only
 * the chunks that cover the requested bytes. `inspectFile` reads the header without a key.
 */
import { type ChunkKeys, openChunk, TAG_SIZE, wipeChunkKeys } from "../format/chunked.js";
import type { Descriptor } from "../format/descriptor.js";
import { fail, namingFile } from "../format/errors.js";
import { PayloadGeometry } from "../format/geometry.js";
import type { ParsedHeader } from "../format/header.js";
import type { Identity } from "../format/stanza.js";
import { readSourceHeader, unlockSource } from "./sealed-header.js";
import { fileSource, type RandomSource } from "./source.js";

export interface DecryptStats {
  /** Chunks authenticated and decrypted since open (including the final chunk at open). */
  chunks: number;
  /** Plaintext bytes those chunks held. */
  bytes: number;
}

export interface SealedFileOptions {
  readonly expectContext?: Readonly<Record<string, string>>;
  /** Refuse a public (integrity-only) file: E_NOT_ENCRYPTED (spec/FORMAT.md §2.5). */
  readonly requireEncrypted?: boolean;
}

export class SealedFile {
  readonly stats: DecryptStats = { chunks: 0, bytes: 0 };
  private keys: ChunkKeys | null;
  private readonly geometry: PayloadGeometry;

  private constructor(
    private readonly path: string,
    private readonly src: RandomSource,
    readonly header: ParsedHeader,
    readonly plaintextLength: number,
    private readonly chunksOffset: number,
    keys: ChunkKeys,
  ) {
    this.keys = keys;
    this.geometry = new PayloadGeometry(header.descriptor.chunkSize);
  }

  /** Errors about the file's contents name `path` (format/errors.ts, namingFile). */
  static async open(
    path: string,
    identities: readonly Identity[],
    opts: SealedFileOptions = {},
  ): Promise<SealedFile> {
    return SealedFile.openSource(await fileSource(path), identities, opts);
  }

  /**
   * The same over any source (a remote object: integrations/objstore); the SealedFile owns it
   * from here on and closes it, also when opening fails. Errors name `src.name`.
   */
  static async openSource(
    src: RandomSource,
    identities: readonly Identity[],
    opts: SealedFileOptions = {},
  ): Promise<SealedFile> {
    const path = src.name;
    try {
      const u = await namingFile(path, () =>
        unlockSource(src, {
          identities,
          expectContext: opts.expectContext,
          requireEncrypted: opts.requireEncrypted,
        }),
      );
      const file = new SealedFile(path, src, u.header, u.plaintextLength, u.chunksOffset, u.keys);
      try {
        // The final chunk authenticates the length; without it a cut file would look shorter.
        await file.decryptChunks(file.geometry.chunkCount(u.plaintextLength) - 1, 1);
      } catch (e) {
        await file.close();
        throw e;
      }
      return file;
    } catch (e) {
      await src.close().catch(() => {});
      throw e;
    }
  }

  get descriptor(): Descriptor {
    return this.header.descriptor;
  }

  /** Exactly `length` plaintext bytes from `offset`; the range must lie inside the file. */
  async readRange(offset: number, length: number): Promise<Buffer> {
    if (!this.keys) fail("E_USAGE", "the sealed file is closed");
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0
    ) {
      fail("E_USAGE", `range (${offset}, ${length}) must be whole numbers >= 0`);
    }
    if (offset + length > this.plaintextLength) {
      fail("E_USAGE", `range ${offset}+${length} is past the end (${this.plaintextLength} bytes)`);
    }
    if (length === 0) return Buffer.alloc(0);
    const cs = this.geometry.chunkSize;
    const first = Math.floor(offset / cs);
    const last = Math.floor((offset + length - 1) / cs);
    const plain = await this.decryptChunks(first, last - first + 1);
    const start = offset - first * cs;
    return plain.subarray(start, start + length);
  }

  /** Wipes the keys and closes the file; later reads fail with E_USAGE. */
  async close(): Promise<void> {
    if (this.keys) wipeChunkKeys(this.keys);
    this.keys = null;
    await this.src.close().catch(() => {});
  }

  /** One read for the sealed chunks, then openChunk on each (exactly the format's code). */
  private decryptChunks(first: number, count: number): Promise<Buffer> {
    return namingFile(this.path, () => this.decryptChunksOf(first, count));
  }

  private async decryptChunksOf(first: number, count: number): Promise<Buffer> {
    const g = this.geometry;
    const sizes = Array.from({ length: count }, (_, i) =>
      g.chunkPlaintextLength(first + i, this.plaintextLength),
    );
    const sealedLength = sizes.reduce((a, n) => a + n + TAG_SIZE, 0);
    const at = this.chunksOffset + first * g.sealedChunkSize;
    const sealed = await this.src.read(at, sealedLength);
    const keys = this.keys;
    if (!keys) return fail("E_USAGE", "the sealed file is closed");
    const out: Buffer[] = [];
    let r = 0;
    sizes.forEach((n, i) => {
      out.push(openChunk(keys, first + i, sealed.subarray(r, r + n + TAG_SIZE)));
      r += n + TAG_SIZE;
      this.stats.chunks++;
      this.stats.bytes += n;
    });
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }
}

/** The parsed header, for `inspect`: no key needed, nothing authenticated. */
export async function inspectFile(path: string): Promise<ParsedHeader> {
  const src = await fileSource(path);
  try {
    return await inspectSource(src);
  } finally {
    await src.close();
  }
}

/** inspectFile over any source (the caller closes it). */
export function inspectSource(src: RandomSource): Promise<ParsedHeader> {
  return namingFile(src.name, () => readSourceHeader(src));
}
