/**
 * Names of temporary outputs, and removal of the ones a killed process left behind.
 *
 * A temporary name carries its writer's process stamp (process-stamp.ts: pid namespace, pid and
 * start time; `<name>.tseal-tmp-<ns>-<pid>-<start>-<random>`), so a later run can tell a dead
 * writer's leftovers from a live writer's work: a pid that is gone, or now belongs to a process
 * that started at another time, cannot come back; a writer in another pid namespace (a
 * container sharing the directory) cannot be judged and is left alone. The first time a process
 * creates an output in a directory it removes the dead writers' temporaries there (files
 * truncated first, directories wiped the same way) and says so through `notice`. Only the
 * current user's entries are touched. Without /proc nothing is ever judged dead.
 */

import {
  closeSync,
  constants,
  ftruncateSync,
  lstatSync,
  openSync,
  readdirSync,
  rmdirSync,
  unlinkSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "../format/primitives.js";
import { notice } from "./notices.js";
import { mayBeAlive, type ProcessStamp, selfStamp } from "./process-stamp.js";

const MARK = ".tseal-tmp-";
const TEMP_PATTERN = /\.tseal-tmp-(\d+)-(\d+)-(\d+)-[0-9a-f]{16}$/;
/** Room for the mark, stamp and random part within a 255-byte file name. */
const MAX_BASE_BYTES = 170;

const OWN = selfStamp();
const OWN_TAG = OWN ? `${OWN.ns}-${OWN.pid}-${OWN.start}` : `0-${process.pid}-0`;

/** A fresh temporary name next to `target` (`hidden`: with a leading dot, for directories). */
export function tempPathFor(target: string, hidden = false): string {
  let base = basename(target);
  while (Buffer.byteLength(base) > MAX_BASE_BYTES) base = base.slice(0, -1);
  const suffix = `${MARK}${OWN_TAG}-${randomBytes(8).toString("hex")}`;
  return join(dirname(target), `${hidden ? "." : ""}${base}${suffix}`);
}

/** Whether `name` is one of our temporary outputs (a write in progress, or a crash's leftover). */
export function isTempName(name: string): boolean {
  return TEMP_PATTERN.test(name);
}

/** The writer of temporary `name`, or null if the name is not one of ours. */
function writerOf(name: string): ProcessStamp | null {
  const m = TEMP_PATTERN.exec(name);
  return m ? { ns: m[1]!, pid: Number(m[2]), start: m[3]! } : null;
}

const scanned = new Set<string>();

/** Once per directory per process: removes temporaries of dead writers. Never throws. */
export function removeStaleTemps(dir: string): void {
  if (scanned.has(dir)) return;
  scanned.add(dir);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const removed: string[] = [];
  for (const name of names) {
    const writer = writerOf(name);
    if (!writer || !OWN || mayBeAlive(writer)) continue;
    const path = join(dir, name);
    try {
      if (lstatSync(path).uid !== process.getuid?.()) continue;
      if (wipeTreeSync(path).length === 0) removed.push(name);
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  if (removed.length > 0) {
    notice(
      `removed ${removed.length} temporary ${removed.length === 1 ? "entry" : "entries"} left in ${dir} by an interrupted tensorseal run: ${removed.join(", ")}`,
    );
  }
}

/**
 * Truncates every regular file (so a descriptor someone still holds reads nothing), unlinks it,
 * and removes the directories, without following symbolic links. Synchronous, so it can run
 * from a signal or `exit` handler. Returns the paths it could not remove.
 */
export function wipeTreeSync(path: string): string[] {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" ? [] : [path];
  }
  if (st.isDirectory()) {
    let entries: string[] = [];
    try {
      entries = readdirSync(path);
    } catch {
      return [path];
    }
    const left = entries.flatMap((e) => wipeTreeSync(join(path, e)));
    try {
      rmdirSync(path);
    } catch {
      left.push(path);
    }
    return left;
  }
  try {
    if (st.isFile()) truncateNoFollow(path);
    unlinkSync(path);
    return [];
  } catch {
    return [path];
  }
}

function truncateNoFollow(path: string): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    ftruncateSync(fd, 0);
  } finally {
    closeSync(fd);
  }
}
