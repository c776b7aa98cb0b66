/**
 * Small file-system helpers for the engine: positional reads and writes that loop until done
 * (a single read/write syscall may be short), and one place that turns Node's fs errors into
 * E_IO errors that name the operation and the path.
 */

import { read, readSync, writeSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { fail, isTensorSealError } from "../format/errors.js";

/** Runs an fs operation; a Node error becomes E_IO naming what was being done (never data). */
export async function io<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw ioError(what, e);
  }
}

/** Runs `fn` on `path` opened for reading, closed afterwards whatever happens. */
export async function withFileInput<T>(
  path: string,
  fn: (fh: FileHandle) => Promise<T>,
): Promise<T> {
  const fh = await io(`open ${path}`, () => open(path, "r"));
  try {
    return await fn(fh);
  } finally {
    await fh.close().catch(() => {});
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

/** Async twin of readExactSync for the main thread (headers, random access). */
export function readExact(fh: FileHandle, length: number, position: number): Promise<Buffer> {
  return io("read the input", async () => {
    const buf = Buffer.alloc(length);
    let off = 0;
    while (off < length) {
      const { bytesRead } = await fh.read(buf, off, length - off, position + off);
      if (bytesRead === 0) fail("E_TRUNCATED", "file ended early while reading");
      off += bytesRead;
    }
    return buf;
  });
}

/** readExact on a descriptor, with node:fs's callbacks (no fs/promises: see source.ts). */
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

export function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  return io("write the output", async () => {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await fh.write(buf, off, buf.length - off, position + off);
      off += bytesWritten;
    }
  });
}
