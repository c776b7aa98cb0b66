/**
 * File-system plumbing for the keystore: a private directory, atomic replacement of
 * keystore.json (the engine's atomic output: temp file, fsync, rename, fsync of the directory)
 * so a crash leaves either the old or the new file, and a lock file so two processes cannot
 * interleave their mutations.
 *
 * Every call is synchronous: these are sub-kilobyte files, and through fs/promises each call
 * cost ~0.1 ms of CPU on the thread pool — a seal's locked counter update made ~30 of them,
 * a sixth of its start-up (issue 11). The functions keep their async signatures for callers.
 */

import {
  chmodSync,
  linkSync,
  mkdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { writeFileAtomicSync } from "../engine/atomic.js";
import { fail } from "../format/errors.js";
import { randomBytes } from "../format/primitives.js";

export const KEYSTORE_FILE = "keystore.json";
const LOCK_FILE = "keystore.lock";
const LOCK_WAIT_MS = 3000;

export function keystorePath(home: string): string {
  return join(home, KEYSTORE_FILE);
}

/** Creates `home` if needed and makes it private to this user (0700). */
export async function ensurePrivateDir(home: string): Promise<void> {
  try {
    mkdirSync(home, { recursive: true, mode: 0o700 });
    chmodSync(home, 0o700);
  } catch (e) {
    fail("E_KEYSTORE", `cannot create the keystore directory ${home}: ${errText(e)}`, e);
  }
}

/** The file's bytes, or null when it does not exist. */
export async function readKeystoreFile(home: string): Promise<Buffer | null> {
  try {
    return readFileSync(keystorePath(home));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    return fail("E_KEYSTORE", `cannot read ${keystorePath(home)}: ${errText(e)}`, e);
  }
}

export async function keystoreExists(home: string): Promise<boolean> {
  try {
    return statSync(keystorePath(home), { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

/** Replaces keystore.json with `data` (mode 0600) so readers never see a partial file. */
export async function writeKeystoreFile(home: string, data: Buffer): Promise<void> {
  try {
    writeFileAtomicSync(keystorePath(home), data);
  } catch (e) {
    fail("E_KEYSTORE", `cannot write ${keystorePath(home)}: ${errText(e)}`, e);
  }
}

/** Runs `fn` holding an exclusive lock file in `home`; waits briefly for another holder. */
export async function withLock<T>(home: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(home, LOCK_FILE);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      takeLock(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        fail("E_KEYSTORE", `cannot lock the keystore in ${home}: ${errText(e)}`, e);
      }
      if (removeStaleLock(lock)) continue;
      if (Date.now() > deadline) {
        fail(
          "E_KEYSTORE",
          `the keystore in ${home} is locked by another tensorseal process: retry, or remove ${lock} if none is running`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  try {
    return await fn();
  } finally {
    removeFile(lock);
  }
}

/**
 * Creates the lock file already holding our pid: written to a temporary name, then hard-linked
 * to the lock name (link fails with EEXIST atomically), so a killed process never leaves an
 * empty lock behind that nobody could judge stale.
 */
function takeLock(lock: string): void {
  const tmp = `${lock}.${randomBytes(6).toString("hex")}`;
  writeFileSync(tmp, String(process.pid), { mode: 0o600 });
  try {
    linkSync(tmp, lock);
  } finally {
    removeFile(tmp);
  }
}

/**
 * A lock whose writer died (killed mid-mutation) names a process that no longer exists on this
 * host: remove it. A lock without a pid yet (being written) or held by a live process stays.
 */
function removeStaleLock(lock: string): boolean {
  let text = "";
  try {
    text = readFileSync(lock, "utf8");
  } catch {
    // gone, or unreadable: not ours to judge
  }
  const pid = Number(text);
  if (!/^\d+$/.test(text) || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ESRCH") return false;
  }
  removeFile(lock);
  return true;
}

/** rm(path, { force: true }) for a file this module created: unlink, a missing file is fine. */
function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ?? (err instanceof Error ? err.message : String(e));
}
