/**
 * A regular file as a stream's source, read at explicit offsets from where the caller says it
 * starts (the descriptor's own position is left alone). Measured on 1 GiB of page-cached input
 * (docs/BENCHMARKS.md, streams on Node 20 and 24): read()'s copy out of the page cache cost as
 * much CPU as AES-GCM itself.
 *  - A read whose bytes the consumer takes only through the addon's batch calls (`map`: the
 *    native sealer; never for opening, see docs/DECISIONS.md "Reseal": a writer changing the
 *    file between GCM's tag check and its decryption) of whole chunks comes from a mapping of
 *    the file: no copy. The addon turns the SIGBUS of a file that shrank into an error.
 *  - Any other read is a pread into one of two buffers (an open's always: splitting large
 *    preads across two pool threads measured no faster, docs/DECISIONS.md).
 */
import { fstatSync, read } from "node:fs";
import { mapInputs, type NativeGcm, nativeGcm } from "./native-gcm.js";
import { askFor, FILE_READ_BYTES, type PullSource } from "./stream-io.js";

/**
 * How much a mapped read covers at most: the same two default chunks as a pread (larger
 * mappings raised peak RSS, mapped pages count toward it, and were no faster).
 */
const MAP_BYTES = FILE_READ_BYTES;

/** `fd` as a FileSource when it is a regular file, else null (a pipe or device: pullSource). */
export function fileSource(fd: number, offset: number): FileSource | null {
  try {
    if (!fstatSync(fd).isFile()) return null;
  } catch {
    return null;
  }
  return new FileSource(fd, offset, mapInputs ? nativeGcm : null);
}

export class FileSource implements PullSource {
  private readonly bufs = [
    Buffer.allocUnsafeSlow(FILE_READ_BYTES),
    Buffer.allocUnsafeSlow(FILE_READ_BYTES),
  ];
  private buf = this.bufs[1]!;
  /** What the last reads handed out, oldest first: a mapping, or null for a buffer. */
  private readonly handed: (ArrayBuffer | null)[] = [];

  constructor(
    private readonly fd: number,
    private at: number,
    private gcm: NativeGcm | null,
  ) {}

  async read(min: number, step?: number, map = false): Promise<Buffer> {
    // The view handed out two reads ago is no longer in use (PullSource's contract).
    if (this.handed.length === 2) this.unmap(this.handed.shift()!);
    if (map && step && min === step) {
      const view = this.mapped(step);
      if (view) return view;
    }
    this.handed.push(null);
    this.buf = this.buf === this.bufs[0] ? this.bufs[1]! : this.bufs[0]!;
    const want = Math.max(1, Math.min(min, this.buf.length));
    const ask = askFor(want, step, this.buf.length);
    let filled = 0;
    while (filled < want) {
      const n = await this.readAt(filled, ask - filled);
      if (n === 0) break;
      filled += n;
    }
    return this.buf.subarray(0, filled);
  }

  close(): void {
    for (const m of this.handed.splice(0)) this.unmap(m);
    for (const b of this.bufs) b.fill(0); // a sealing run's plaintext
  }

  /** Whole steps from a mapping, or null (less than one left, or the file cannot be mapped). */
  private mapped(step: number): Buffer | null {
    const gcm = this.gcm;
    if (!gcm) return null;
    let size: number;
    try {
      size = fstatSync(this.fd).size;
    } catch {
      return null; // the pread path reports what is wrong
    }
    const whole = Math.floor(Math.min(size - this.at, MAP_BYTES) / step);
    if (whole < 1) return null;
    const length = whole * step;
    let mapping: ArrayBuffer;
    try {
      mapping = gcm.mapFile(this.fd, this.at, length);
    } catch (e) {
      // Shrank since the fstat: the pread path sees where it now ends. Not mappable at all
      // (a runtime that refuses external buffers): pread from now on.
      if (!(e instanceof RangeError)) this.gcm = null;
      return null;
    }
    this.handed.push(mapping);
    this.at += length;
    return Buffer.from(mapping, 0, length);
  }

  private unmap(m: ArrayBuffer | null): void {
    if (m) nativeGcm?.unmap(m);
  }

  /** One pread of up to `length` bytes into the buffer at `offset`, in two halves when large. */
  private async readAt(offset: number, length: number): Promise<number> {
    const n = await pread(this.fd, this.buf, offset, length, this.at);
    this.at += n;
    return n;
  }
}

function pread(fd: number, buf: Buffer, at: number, length: number, position: number) {
  return new Promise<number>((resolve, reject) =>
    read(fd, buf, at, length, position, (err, n) => (err ? reject(err) : resolve(n))),
  );
}
