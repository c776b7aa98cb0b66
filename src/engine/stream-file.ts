/**
 * A regular file as a stream's source, read at explicit offsets from where the caller says it
 * starts (the descriptor's own position is left alone). Measured on 1 GiB of page-cached input
 * (docs/BENCHMARKS.md, streams on Node 20 and 24): read()'s copy out of the page cache cost as
 * much CPU as AES-GCM itself.
 *  - A read whose bytes the consumer takes only through the addon's batch calls (`map`: the
 *    native sealer; never for opening, see docs/DECISIONS.md "Reseal": a writer changing the
 *    file between GCM's tag check and its decryption) of whole chunks comes from a mapping of
 *    the file: no copy. The addon turns the SIGBUS of a file that shrank into an error.
 *  - Any other read is a pread into one of three buffers (an open's always: splitting large
 *    preads across two pool threads measured no faster, docs/DECISIONS.md). A consumer that
 *    reads whole steps gets the next read started as soon as this one is done (read ahead): it
 *    then runs beside the cipher work instead of after it (1 GiB open to /dev/null: 0.287 vs
 *    0.314 s on Node 20, docs/BENCHMARKS.md).
 */
import { fstatSync, read } from "node:fs";
import { mapInputs, type NativeGcm, nativeGcm } from "./native-gcm.js";
import { askFor, FILE_READ_BYTES, type PullSource } from "./stream-io.js";

/**
 * How much a mapped read covers at most: four default chunks (twice a pread's two). Each
 * mapping is one mmap and one munmap, whose TLB flush reaches the core the pool thread used, and
 * each mapped read is one batch, split over the two pool threads. Measured 2026-12-06 (1 GiB
 * sealed to /dev/null, Node 20, 21 paired rounds): against two chunks, -11 % CPU and -9 % wall,
 * peak RSS 62 -> 67 MiB (mapped pages count toward it); eight chunks were no faster than four
 * and peaked at 82 MiB.
 */
const MAP_BYTES = 2 * FILE_READ_BYTES;

/** `fd` as a FileSource when it is a regular file, else null (a pipe or device: pullSource). */
export function fileSource(fd: number, offset: number): FileSource | null {
  try {
    if (!fstatSync(fd).isFile()) return null;
  } catch {
    return null;
  }
  return new FileSource(fd, offset, mapInputs ? nativeGcm : null);
}

/** A read started before it was asked for: where, in what steps, into which buffer. */
interface Ahead {
  at: number;
  step: number;
  buf: Buffer;
  filled: Promise<number>;
}

export class FileSource implements PullSource {
  /**
   * Three buffers in turn, allocated on first use: the two views a consumer may still hold
   * (PullSource's contract) and the one a read ahead fills.
   */
  private readonly bufs: Buffer[] = [];
  private turn = 0;
  /** What the last reads handed out, oldest first: a mapping, or null for a buffer. */
  private readonly handed: (ArrayBuffer | null)[] = [];
  private ahead: Ahead | null = null;
  private closed = false;

  constructor(
    private readonly fd: number,
    private at: number,
    private gcm: NativeGcm | null,
  ) {}

  async read(min: number, step?: number, map = false): Promise<Buffer> {
    // The view handed out two reads ago is no longer in use (PullSource's contract).
    if (this.handed.length === 2) this.unmap(this.handed.shift()!);
    const ahead = await this.settleAhead(min, step);
    if (!ahead && map && step && min === step) {
      const view = this.mapped(step);
      if (view) return view;
    }
    this.handed.push(null);
    let buf: Buffer;
    let filled: number;
    if (ahead) {
      ({ buf } = ahead);
      filled = await ahead.filled;
    } else {
      buf = this.nextBuffer();
      const want = Math.max(1, Math.min(min, buf.length));
      filled = await this.fill(buf, this.at, want, askFor(want, step, buf.length));
    }
    this.at += filled;
    // A consumer reading whole steps asks for whole steps again: the next read starts now, on
    // a pool thread, while this one is worked on (it takes the buffer the contract frees next).
    if (step && min === step && filled === askFor(step, step, buf.length)) this.readAhead(step);
    return buf.subarray(0, filled);
  }

  close(): void {
    this.closed = true;
    for (const m of this.handed.splice(0)) this.unmap(m);
    for (const b of this.bufs) b.fill(0); // a sealing run's plaintext
    // A read ahead still in flight lands after the wipe: wipe its buffer again then.
    const ahead = this.ahead;
    if (ahead)
      void ahead.filled.then(
        () => ahead.buf.fill(0),
        () => ahead.buf.fill(0),
      );
  }

  private nextBuffer(): Buffer {
    const i = this.turn++ % 3;
    this.bufs[i] ??= Buffer.allocUnsafeSlow(FILE_READ_BYTES);
    return this.bufs[i];
  }

  private readAhead(step: number): void {
    const buf = this.nextBuffer();
    const want = askFor(step, step, buf.length);
    const filled = this.fill(buf, this.at, want, want);
    filled.catch(() => {}); // taken by the next read, or dropped
    this.ahead = { at: this.at, step, buf, filled };
  }

  /**
   * The read ahead when it is what this read asks for (the same place, whole steps of the same
   * size); any other is waited for (its buffer is then free) and dropped.
   */
  private async settleAhead(min: number, step: number | undefined): Promise<Ahead | null> {
    const ahead = this.ahead;
    if (!ahead) return null;
    this.ahead = null;
    if (ahead.at === this.at && ahead.step === step && min === step) return ahead;
    await ahead.filled.catch(() => {});
    return null;
  }

  /** preads from `at` into `buf` until it holds `want` bytes or the file ends; at most `ask`. */
  private async fill(buf: Buffer, at: number, want: number, ask: number): Promise<number> {
    let filled = 0;
    while (filled < want && !this.closed) {
      const n = await pread(this.fd, buf, filled, ask - filled, at + filled);
      if (n === 0) break;
      filled += n;
    }
    return filled;
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
}

function pread(fd: number, buf: Buffer, at: number, length: number, position: number) {
  return new Promise<number>((resolve, reject) =>
    read(fd, buf, at, length, position, (err, n) => (err ? reject(err) : resolve(n))),
  );
}
