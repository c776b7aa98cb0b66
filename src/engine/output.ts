/**
 * Where an output goes. A path that does not exist, or names a regular file or a symbolic link,
 * gets an atomic output (atomic.ts). One that names a device, FIFO or socket (`/dev/null`,
 * `/dev/stdout`, a named pipe) is written in place as a stream, never renamed over: such an
 * output behaves like stdout, it receives authenticated plaintext progressively and a failure
 * part way leaves what was already written there. A directory is refused.
 */
import { constants, createWriteStream, type Stats, statSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { fail } from "../format/errors.js";
import { type CommitOptions, withAtomicOutput, writeFileAtomicSync } from "./atomic.js";
import { io } from "./fsutil.js";

export type OutputKind = "file" | "special";

/** "special" for an existing device, FIFO or socket (following symbolic links); else "file". */
export async function outputKind(path: string): Promise<OutputKind> {
  const st = statOrNull(path);
  if (!st || st.isFile()) return "file";
  if (st.isDirectory()) return fail("E_USAGE", `${path} is a directory: give a file name`);
  return "special";
}

/** A stat of `path`, or null when it cannot be had (a synchronous call: no thread pool trip). */
function statOrNull(path: string): Stats | null {
  try {
    return statSync(path, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

/** Opens an existing special file for writing, without creating or truncating anything. */
async function openSpecial(path: string): Promise<FileHandle> {
  const fh = await io(`open ${path} for writing`, async () => {
    try {
      return await open(path, constants.O_WRONLY | constants.O_NOCTTY);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENXIO") {
        fail(
          "E_USAGE",
          `${path} is a socket (or a device with nothing behind it): cannot write to it`,
        );
      }
      throw e;
    }
  });
  // The path may have been swapped for a regular file since outputKind: that one would be
  // written without the atomic rename, so refuse it.
  if ((await fh.stat()).isFile()) {
    await fh.close();
    fail("E_USAGE", `${path} changed into a regular file while opening it: retry`);
  }
  return fh;
}

/**
 * Runs `fn` with a stream into `target`: in place for a special file, else an atomic output
 * that takes the target's name only if `fn` succeeds.
 */
export async function withOutputStream<T>(
  target: string,
  fn: (out: Writable) => Promise<T>,
): Promise<T> {
  if ((await outputKind(target)) === "special") {
    const fh = await openSpecial(target);
    try {
      return await writeThrough(fh.fd, fn);
    } finally {
      await fh.close().catch(() => {});
    }
  }
  return withAtomicOutput(target, (out) => writeThrough(out.fd, fn));
}

/**
 * A stream on a raw descriptor: it must not own (close) the handle that the caller closes. A
 * `fn` that returns without ending the stream (it wrote what it had) is done: end it here, or
 * the wait for "finish" would never end, the output would never be committed, and the process
 * would exit 0 once nothing else kept it alive.
 */
async function writeThrough<T>(fd: number, fn: (out: Writable) => Promise<T>): Promise<T> {
  const sink = createWriteStream("", { fd, autoClose: false });
  const result = await fn(sink);
  if (!sink.writableEnded) sink.end();
  if (!sink.writableFinished) await finished(sink);
  return result;
}

/**
 * Writes `data` to `target` (mode 0600): atomically for a file, in place for a device or FIFO.
 * For keys, identities, shares and manifests: a crash never leaves half of one.
 */
export async function writeFileAtomic(
  target: string,
  data: Uint8Array | string,
  opts: CommitOptions = {},
): Promise<void> {
  if ((await outputKind(target)) === "special") {
    const fh = await openSpecial(target);
    try {
      await io(`write ${target}`, () => fh.writeFile(data));
    } finally {
      await fh.close().catch(() => {});
    }
    return;
  }
  writeFileAtomicSync(target, data, opts);
}
