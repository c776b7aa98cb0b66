/**
 * A private directory in RAM for plaintext that a runtime must read by path. Node has no
 * memfd_create, so the directory lives on a tmpfs (default /dev/shm); the file system type is
 * checked with statfs before anything is written, and there is no fallback to a disk path.
 * The directory is 0700 and files are 0600. Wiping overwrites every file with zeros before
 * unlinking it, so another open descriptor to the same inode sees zeros, not weights.
 */
import {
  closeSync,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  rmdirSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { chmod, mkdtemp, statfs } from "node:fs/promises";
import { join } from "node:path";
import { fail } from "../format/errors.js";

export const DEFAULT_RAM_BASE = "/dev/shm";
export const TMPFS_MAGIC = 0x01021994;
export const RAMFS_MAGIC = 0x858458f6;
const ZEROS = Buffer.alloc(1 << 20);

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

/** A fresh 0700 directory under `base`, after checking that `base` is RAM-backed. */
export async function createRamDir(base = DEFAULT_RAM_BASE): Promise<string> {
  await checkRamFs(base);
  const dir = await mkdtemp(join(base, `tensorseal-exec-${process.pid}-`));
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
 * remove so the caller can report them.
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
    } catch {
      left.push(path);
    }
  }
  try {
    rmdirSync(dir);
  } catch {
    left.push(dir);
  }
  return left;
}

function zeroFileSync(path: string): void {
  if (!lstatSync(path).isFile()) return;
  const fd = openSync(path, "r+");
  try {
    const { size } = fstatSync(fd);
    for (let at = 0; at < size; at += ZEROS.length) {
      writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, size - at), at);
    }
  } finally {
    closeSync(fd);
  }
}
