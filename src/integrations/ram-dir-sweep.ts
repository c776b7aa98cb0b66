/**
 * A killed `exec` (SIGKILL of it and its guardian, a host-wide OOM kill) cannot wipe its RAM
 * directory. The next `exec` on the same base directory removes such leftovers: directories this
 * user owns whose name says which process made them, when that process is certainly gone (same
 * pid namespace, pid free or reused by a process with another start time). A live exec's
 * directory, one from another pid namespace (a container sharing /dev/shm) and names this
 * version did not make are never touched.
 */
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { mayBeAlive } from "../engine/process-stamp.js";
import { RAM_DIR_PREFIX, ramDirOwner, wipeDirSync } from "./ram-dir.js";

export interface SweptDir {
  readonly path: string;
  readonly pid: number;
  /** Paths that could not be removed (empty when the directory is gone). */
  readonly left: readonly string[];
}

export function sweepStaleRamDirs(base: string): SweptDir[] {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return [];
  }
  const uid = process.getuid?.();
  const swept: SweptDir[] = [];
  for (const name of names) {
    if (!name.startsWith(RAM_DIR_PREFIX)) continue;
    const owner = ramDirOwner(name);
    if (!owner || mayBeAlive(owner)) continue;
    const path = join(base, name);
    try {
      const st = lstatSync(path);
      if (!st.isDirectory() || st.uid !== uid) continue;
    } catch {
      continue;
    }
    swept.push({ path, pid: owner.pid, left: wipeDirSync(path) });
  }
  return swept;
}
