/**
 * Atomic outputs: a reader never sees a partial output, and an interrupted writer leaves nothing.
 *
 * The data goes to a temporary file in the target's directory (mode 0600), is fsynced, and
 * only then takes the target's name; the directory is fsynced after. Where the file system
 * allows it (and the native addon is built) the temporary file is anonymous (O_TMPFILE): it has
 * no name until linkat gives it the target's, so even a SIGKILL or power loss leaves nothing
 * behind — the kernel frees it with its last descriptor. Elsewhere it is a named
 * `<target>.tseal-tmp-<pid>-<start>-<random>` (stale-temps.ts): removed on failure and on
 * SIGINT/SIGTERM/SIGHUP (interrupt.ts), and a later run removes those of dead writers.
 *
 * An existing target is replaced by rename(2) only if it is a regular file (or a symbolic link,
 * which is replaced, not followed); devices, FIFOs and sockets are written in place instead
 * (output.ts), and a directory is refused.
 */
import {
  closeSync,
  constants,
  fdatasync,
  fsync,
  fsyncSync,
  ftruncateSync,
  linkSync,
  lstatSync,
  openSync,
  renameSync,
  type Stats,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fail } from "../format/errors.js";
import { io, ioError, ioSync } from "./fsutil.js";
import { onInterrupt } from "./interrupt.js";
import { nativeGcm } from "./native-gcm.js";
import { removeStaleTemps, tempPathFor } from "./stale-temps.js";

const FLUSH_INTERVAL_MS = 50;
/** Linux's O_TMPFILE (__O_TMPFILE | O_DIRECTORY); Node does not export it. */
const O_TMPFILE = 0o20000000 | constants.O_DIRECTORY;
/** Errors meaning "this file system (or kernel) has no O_TMPFILE": use a named temp instead. */
const NO_TMPFILE = new Set(["EOPNOTSUPP", "EISDIR", "EINVAL", "ENOTSUP"]);

export interface CommitOptions {
  /** Refuse (E_USAGE) instead of replacing a target that exists by now. Default: replace. */
  readonly exclusive?: boolean;
}

/**
 * The output's descriptor comes from synchronous calls, as do its name changes (link, rename,
 * close): metadata calls, cheaper than a trip to the thread pool each (issue 11). Only the
 * fsyncs, which may wait for a large file's data to reach the disk, stay off the main thread.
 */
export class AtomicOutput {
  private closed = false;

  private constructor(
    readonly target: string,
    readonly fd: number,
    /** The temporary file's name; null while it is anonymous (O_TMPFILE). */
    private tmpName: string | null,
    private readonly release: () => void,
  ) {}

  static async create(target: string): Promise<AtomicOutput> {
    const { fd, tmpName } = openTemp(target);
    // Registered right after the synchronous open: no signal handler could run in between.
    let out: AtomicOutput | null = null;
    const release = onInterrupt(() => out?.discardSync());
    out = new AtomicOutput(target, fd, tmpName, release);
    return out;
  }

  /** True when a crash at this moment would leave nothing behind (no name yet). */
  get anonymous(): boolean {
    return this.tmpName === null;
  }

  /**
   * Runs `fn` while flushing written data to disk in the background, so the disk works while
   * the CPUs encrypt instead of after (the final fsync then has little left; on this machine
   * class it lifted a 1 GiB seal from about 0.4 to 0.55 GB/s, which is the disk's write speed).
   * A flush error fails the operation: Linux reports a writeback error to one fsync only.
   */
  async whileFlushing<T>(fn: () => Promise<T>): Promise<T> {
    const done = new AbortController();
    let flushError: unknown = null;
    const flusher = (async () => {
      while (!done.signal.aborted) {
        try {
          await syncData(this.fd, fdatasync);
        } catch (e) {
          flushError ??= e;
          return;
        }
        // Cut short when fn ends: the caller's final fsync should not wait out the interval.
        await delay(FLUSH_INTERVAL_MS, undefined, { signal: done.signal }).catch(() => {});
      }
    })();
    try {
      return await fn();
    } finally {
      done.abort();
      await flusher;
      if (flushError)
        await io(`flush the output for ${this.target}`, () => Promise.reject(flushError));
    }
  }

  async commit(opts: CommitOptions = {}): Promise<void> {
    await io(`flush the output for ${this.target}`, () => syncData(this.fd, fsync));
    if (this.tmpName === null) {
      // Straight to the target's name when it is free: nothing named exists before it is whole.
      if (linkFdAs(this.fd, this.target, opts.exclusive === true)) {
        this.closeAndRelease();
        syncDirectory(dirname(this.target));
        return;
      }
      const named = tempPathFor(this.target);
      linkFdAs(this.fd, named, true);
      this.tmpName = named;
    }
    ioSync(`close the output for ${this.target}`, () => this.closeFile());
    publishTemp(this.tmpName, this.target, opts.exclusive === true);
    this.tmpName = null;
    this.release();
    syncDirectory(dirname(this.target));
  }

  /** Best effort: the original error matters more than a failing cleanup. */
  async abort(): Promise<void> {
    this.discardSync();
    this.release();
  }

  private closeFile(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  private closeAndRelease(): void {
    ioSync(`close the output for ${this.target}`, () => this.closeFile());
    this.release();
  }

  /** Synchronous so it can run from a signal handler: empty the temp, unlink it. */
  private discardSync(): void {
    if (!this.closed) {
      // Truncating first frees plaintext blocks even if something still holds the file open.
      if (this.tmpName !== null) quietly(() => ftruncateSync(this.fd, 0));
      this.closed = true;
      quietly(() => closeSync(this.fd));
    }
    if (this.tmpName !== null) quietly(() => unlinkSync(this.tmpName!));
    this.tmpName = null;
  }
}

function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // best effort while discarding
  }
}

/** fsync or fdatasync of `fd` on the thread pool (node:fs's callback, no fs/promises). */
function syncData(
  fd: number,
  call: (fd: number, done: (e: NodeJS.ErrnoException | null) => void) => void,
): Promise<void> {
  return new Promise((resolve, reject) => call(fd, (e) => (e ? reject(e) : resolve())));
}

/**
 * Links the anonymous file `fd` as `name`. False when `name` exists and may be replaced (the
 * caller then links a temporary name and renames); EEXIST with `exclusive` is E_USAGE.
 */
function linkFdAs(fd: number, name: string, exclusive: boolean): boolean {
  try {
    nativeGcm!.linkFd(fd, name);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST" && !exclusive) return false;
    if (code === "EEXIST") return fail("E_USAGE", `${name} exists: not replacing it`);
    return fail("E_IO", `cannot create ${name}: ${code ?? "error"}`, e);
  }
}

/** Gives the closed temporary file `tmp` the name `target`: link (exclusive) or rename. */
function publishTemp(tmp: string, target: string, exclusive: boolean): void {
  if (exclusive) {
    ioSync(`create ${target}`, () => {
      try {
        linkSync(tmp, target); // EEXIST instead of replacing, atomically
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") {
          fail("E_USAGE", `${target} exists: not replacing it`);
        }
        throw e;
      }
      unlinkSync(tmp);
    });
  } else {
    refuseSpecialTarget(target);
    ioSync(`rename the output into place as ${target}`, () => renameSync(tmp, target));
  }
}

/** rename(2) would replace a device, FIFO or socket with a regular file: refuse. */
function refuseSpecialTarget(target: string): void {
  let st: Stats | undefined;
  try {
    st = lstatSync(target, { throwIfNoEntry: false });
  } catch {
    st = undefined; // unreadable: the rename that follows reports what is wrong
  }
  if (st && !st.isFile() && !st.isSymbolicLink()) {
    fail("E_USAGE", `${target} is not a regular file: not replacing it`);
  }
}

/** Makes the rename durable; some file systems refuse fsync on directories, which is harmless. */
export function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM") {
      throw ioError(`flush directory ${dir}`, e);
    }
  } finally {
    const open = fd;
    if (open !== undefined) quietly(() => closeSync(open));
  }
}

/**
 * Writes a small `data` (a keystore, a key, a report) to `target` with AtomicOutput's steps —
 * an anonymous or named temporary file, fsync, link or rename, the directory's fsync — in
 * synchronous calls: each fs/promises call costs ~0.1 ms of CPU on the thread pool, and a
 * seal's keystore update alone made a dozen (issue 11). No signal handler is needed: none runs
 * before this returns, and it returns with the temporary file committed or removed.
 */
export function writeFileAtomicSync(
  target: string,
  data: Uint8Array | string,
  opts: CommitOptions = {},
): void {
  const dir = dirname(target);
  const temp = openTemp(target);
  let fd: number | null = temp.fd;
  let tmpName = temp.tmpName;
  try {
    const out = temp.fd;
    ioSync(`write ${target}`, () => {
      writeFileSync(out, data);
      fsyncSync(out);
    });
    if (tmpName === null) {
      if (linkFdAs(out, target, opts.exclusive === true)) {
        fd = null;
        ioSync(`close the output for ${target}`, () => closeSync(out));
        syncDirectory(dir);
        return;
      }
      const named = tempPathFor(target);
      linkFdAs(out, named, true);
      tmpName = named;
    }
    fd = null;
    ioSync(`close the output for ${target}`, () => closeSync(out));
    publishTemp(tmpName, target, opts.exclusive === true);
    tmpName = null;
    syncDirectory(dir);
  } finally {
    const left = fd;
    if (left !== null) {
      if (tmpName !== null) quietly(() => ftruncateSync(left, 0)); // frees its blocks at once
      quietly(() => closeSync(left));
    }
    if (tmpName !== null) quietly(() => unlinkSync(tmpName!));
  }
}

/**
 * A temporary file next to `target` (stale ones of dead writers removed first): anonymous where
 * the file system allows it (tmpName null), else `<target>.tseal-tmp-…` (mode 0600).
 */
function openTemp(target: string): { fd: number; tmpName: string | null } {
  const dir = dirname(target);
  removeStaleTemps(dir);
  const anonymous = nativeGcm ? openAnonymous(dir, target) : null;
  if (anonymous !== null) return { fd: anonymous, tmpName: null };
  const tmpName = tempPathFor(target);
  const flags = constants.O_CREAT | constants.O_EXCL | constants.O_RDWR;
  const fd = ioSync(`create a temporary file next to ${target}`, () =>
    openSync(tmpName, flags, 0o600),
  );
  return { fd, tmpName };
}

/** An unnamed file in `dir`, or null where the file system has no O_TMPFILE. */
function openAnonymous(dir: string, target: string): number | null {
  try {
    return openSync(dir, O_TMPFILE | constants.O_RDWR, 0o600);
  } catch (e) {
    if (NO_TMPFILE.has((e as NodeJS.ErrnoException).code ?? "")) return null;
    throw ioError(`create a temporary file next to ${target}`, e);
  }
}

/** Runs `fn` against a fresh temp output; commits on success, removes the temp on failure. */
export async function withAtomicOutput<T>(
  target: string,
  fn: (out: AtomicOutput) => Promise<T>,
  opts: CommitOptions = {},
): Promise<T> {
  const out = await AtomicOutput.create(target);
  try {
    const result = await fn(out);
    await out.commit(opts);
    return result;
  } catch (e) {
    await out.abort();
    throw e;
  }
}
