/**
 * Small file-system helpers for the engine: positional reads and writes that loop until done
 * (a single read/write syscall may be short), and one place that turns Node's fs errors into
 * E_IO errors that name the operation and the path.
 */

import { closeSync, openSync, read, readSync, write, writeSync } from "node:fs";
import { fail, isTensorSealError } from "../format/errors.js";

/** Runs an fs operation; a Node error becomes E_IO naming what was being done (never data). */
export async function io<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw ioError(what, e);
  }
}

/**
 * Runs `fn` on `path` opened for reading, closed afterwards whatever happens. A descriptor from
 * synchronous calls, not a FileHandle: fs/promises costs a small file's run ~0.1 ms per call and
 * its load (issue 11).
 */
export async function withFileInput<T>(path: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = ioSync(`open ${path}`, () => openSync(path, "r"));
  try {
    return await fn(fd);
  } finally {
    try {
      closeSync(fd);
    } catch {
      // nothing was written through it
    }
  }
}

/** io()'s synchronous twin. */
export function ioSync<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw ioError(what, e);
  }
}

export function ioError(what: string, e: unknown): unknown {
  if (isTensorSealError(e)) return e;
  const code = (e as NodeJS.ErrnoException)?.code ?? "unknown error";
  try {
    fail("E_IO", `cannot ${what}: ${code}`, e);
  } catch (err) {
    return err;
  }
}

/** Fills `buf` from `position`; a file shorter than expected changed under us. */
export function readExactSync(fd: number, buf: Buffer, position: number): void {
  let off = 0;
  while (off < buf.length) {
    const n = readSync(fd, buf, off, buf.length - off, position + off);
    if (n === 0) fail("E_IO", "input ended early: the file changed while it was being read");
    off += n;
  }
}

export function writeAllSync(fd: number, buf: Uint8Array, position: number): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off, position + off);
}

/** Async twin of readExactSync for the main thread (headers, random access), with node:fs's
 * callbacks (no fs/promises: see source.ts). */
export function readExactFd(fd: number, length: number, position: number): Promise<Buffer> {
  return io("read the input", async () => {
    const buf = Buffer.alloc(length);
    let off = 0;
    while (off < length) {
      const n = await new Promise<number>((resolve, reject) =>
        read(fd, buf, off, length - off, position + off, (e, got) =>
          e ? reject(e) : resolve(got),
        ),
      );
      if (n === 0) fail("E_TRUNCATED", "file ended early while reading");
      off += n;
    }
    return buf;
  });
}

export function writeAll(fd: number, buf: Buffer, position: number): Promise<void> {
  return io("write the output", async () => {
    let off = 0;
    while (off < buf.length) {
      off += await new Promise<number>((resolve, reject) =>
        write(fd, buf, off, buf.length - off, position + off, (e, n) =>
          e ? reject(e) : resolve(n),
        ),
      );
    }
  });
}
