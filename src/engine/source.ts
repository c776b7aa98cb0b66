/**
 * A random-access byte source: what a sealed file is read through when it is not a local
 * descriptor the worker threads can pread (an object in S3, a file behind an HTTP server).
 * The engine needs only its size and positional reads; the remote implementations (with their
 * ranges, ETag pinning and retries) live in integrations/objstore. `fileSource` is the local
 * file behind the same interface, so one code path (sealed-header.ts, sealed-file.ts,
 * open-source.ts) serves both.
 */
import { close, fstat, open, type Stats } from "node:fs";
import { io, readExactFd } from "./fsutil.js";

export interface RandomSource {
  /** What errors name: a path, or a URL without credentials or query (never a secret). */
  readonly name: string;
  /** Total size in bytes, fixed when the source was opened. */
  readonly size: number;
  /**
   * Exactly `length` bytes from `offset` (inside [0, size]); a fresh buffer the caller owns.
   * A source that can no longer promise the bytes it was opened on (the object changed) fails.
   */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Optional, for whole-file reads (open, verify, a full load): the `length` bytes from
   * `offset` as one sequential stream (a remote object's single GET, resumed where it stopped
   * if the connection drops), yielded in order as fresh buffers of `pieceBytes` (the last one
   * shorter). Pulled: the source reads ahead only as far as its transport buffers, so the
   * consumer bounds memory. A source without it is read with `read` in parallel ranges.
   * `spare`: pieces the consumer is done with (it pushes them); the source may fill them again
   * instead of allocating (8 MiB buffers dropped per batch kept the garbage collector busy).
   */
  stream?(
    offset: number,
    length: number,
    pieceBytes: number,
    spare?: Buffer[],
  ): AsyncIterable<Buffer>;
  close(): Promise<void>;
}

/**
 * A local file as a RandomSource (positional reads on one descriptor). node:fs's callbacks, not
 * fs/promises: `inspect` and `open` read a header through this, and loading fs/promises (which
 * brings readline) was a tenth of a short command's start-up (issue 11).
 */
export async function fileSource(path: string): Promise<RandomSource> {
  const fd = await io(`open ${path}`, () => callback<number>((done) => open(path, "r", done)));
  const release = () => callback<void>((done) => close(fd, done)).catch(() => {});
  try {
    const { size } = await io(`stat ${path}`, () => callback<Stats>((done) => fstat(fd, done)));
    return {
      name: path,
      size,
      read: (offset, length) => readExactFd(fd, length, offset),
      close: release,
    };
  } catch (e) {
    await release();
    throw e;
  }
}

function callback<T>(
  start: (done: (e: NodeJS.ErrnoException | null, value: T) => void) => void,
): Promise<T> {
  return new Promise((resolve, reject) => start((e, v) => (e ? reject(e) : resolve(v))));
}

/** A descriptor its caller owns (and closes) as a RandomSource: close() leaves it open. */
export function descriptorSource(fd: number, name: string, size: number): RandomSource {
  return {
    name,
    size,
    read: (offset, length) => readExactFd(fd, length, offset),
    close: async () => {},
  };
}
