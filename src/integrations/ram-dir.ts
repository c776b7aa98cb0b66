/**
 * A private directory in RAM for plaintext that a runtime must read by path. Node has no
 * memfd_create, so the directory lives on a tmpfs (default /dev/shm); the file system type is
 * checked with statfs before anything is written, and there is no fallback to a disk path.
 * The directory is 0700 and files are 0600. Wiping overwrites every file with zeros before
 * unlinking it, so another open descriptor to the same inode sees zeros, not weights.
 *
 * Names: `tensorseal-exec-<model>-<pid>-<start time>-<pid namespace>-<random>`, so a person sees
 * which model a directory holds, and a later exec can tell whether its owner still runs
 * (process-stamp.ts, ram-dir-sweep.ts).
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  rmdirSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { chmod, mkdtemp, statfs } from "node:fs/promises";
import { basename, join } from "node:path";
import { type ProcessStamp, selfStamp } from "../engine/process-stamp.js";
import { fail } from "../format/errors.js";

export const DEFAULT_RAM_BASE = "/dev/shm";
export const TMPFS_MAGIC = 0x01021994;
export const RAMFS_MAGIC = 0x858458f6;
export const RAM_DIR_PREFIX = "tensorseal-exec-";
const ZEROS = Buffer.alloc(1 << 20);
const NAME = /^tensorseal-exec-(.+)-(\d+)-(\d+)-(\d+)-[A-Za-z0-9]{6}$/;

/** Refuses any file system that is not tmpfs or ramfs. */
export async function checkRamFs(path: string): Promise<void> {
  let type: number;
  try {
    type = (await statfs(path)).type;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    return fail(
      "E_IO",
      `cannot use ${path} for plaintext (${code}): pass --tmpfs DIR on a RAM mount`,
      e,
    );
  }
  if (type !== TMPFS_MAGIC && type !== RAMFS_MAGIC) {
    fail(
      "E_UNSUPPORTED",
      `${path} is not a tmpfs or ramfs (file system type 0x${type.toString(16)}): refusing to write plaintext there; pass --tmpfs DIR with a RAM-backed mount`,
    );
  }
}

/**
 * The label a RAM directory carries: the sealed path's base name without `.tseal` / `.sealed`,
 * limited to letters, digits, `.`, `_` and `-` (64 at most).
 */
export function modelLabel(sealedPath: string): string {
  const name = plaintextName(sealedPath)
    .replace(/[^A-Za-z0-9._-]/g, "_")
    .slice(0, 64);
  return name.replace(/^\.+/, "") || "model";
}

/** What a sealed file or directory is called once opened: its name without `.tseal` / `.sealed`. */
export function plaintextName(sealedPath: string): string {
  const name = basename(sealedPath).replace(/\.(tseal|sealed)$/, "");
  return name === "" || name === "." || name === ".." ? "model" : name;
}

/** The owner encoded in a RAM directory's name, or null for a name this version did not make. */
export function ramDirOwner(name: string): ProcessStamp | null {
  const m = NAME.exec(name);
  return m ? { pid: Number(m[2]), start: m[3]!, ns: m[4]! } : null;
}

/** A fresh 0700 directory under `base`, after checking that `base` is RAM-backed. */
export async function createRamDir(base = DEFAULT_RAM_BASE, label = "model"): Promise<string> {
  await checkRamFs(base);
  const me = selfStamp();
  const owner = me ? `${me.pid}-${me.start}-${me.ns}` : `${process.pid}-0-0`;
  const dir = await mkdtemp(join(base, `${RAM_DIR_PREFIX}${label}-${owner}-`));
  await chmod(dir, 0o700);
  try {
    await checkRamFs(dir); // the new directory itself, in case base had another mount below
  } catch (e) {
    wipeDirSync(dir);
    throw e;
  }
  return dir;
}

/**
 * Synchronous so it can run from a signal or `exit` handler: zero-fill each regular file,
 * unlink it, remove the directories. Best effort per entry; returns the paths it could not
 * remove so the caller can report them. An entry that vanished meanwhile (another wiper: exec's
 * guardian, a sweeping exec) counts as removed.
 */
export function wipeDirSync(dir: string): string[] {
  const left: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return left;
    return [dir];
  }
  for (const name of entries) {
    const path = join(dir, name);
    try {
      if (lstatSync(path).isDirectory()) {
        left.push(...wipeDirSync(path));
        continue;
      }
      zeroFileSync(path);
      unlinkSync(path);
    } catch (e) {
      if (!gone(e)) left.push(path);
    }
  }
  try {
    rmdirSync(dir);
  } catch (e) {
    if (!gone(e)) left.push(dir);
  }
  return left;
}

const gone = (e: unknown) => (e as NodeJS.ErrnoException).code === "ENOENT";

function zeroFileSync(path: string): void {
  if (!lstatSync(path).isFile()) return;
  // O_NOFOLLOW: a file swapped for a link after the lstat is not followed (ELOOP: left, reported)
  const fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return;
    const { size } = st;
    for (let at = 0; at < size; at += ZEROS.length) {
      writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, size - at), at);
    }
  } finally {
    closeSync(fd);
  }
}
