/**
 * Names of temporary outputs, and removal of the ones a killed process left behind.
 *
 * A temporary name carries its writer's pid and that process's start time
 * (`<name>.tseal-tmp-<pid>-<start>-<random>`), so a later run can tell a dead writer's leftovers
 * from a live writer's work: a pid that is gone, or now belongs to a process that started at
 * another time, cannot come back. The first time a process creates an output in a directory it
 * removes the dead writers' temporaries there (files truncated first, directories wiped the
 * same way) and says so through `notice`. Only the current user's entries are touched.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  ftruncateSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  unlinkSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { notice } from "./notices.js";

const MARK = ".tseal-tmp-";
const TEMP_PATTERN = /\.tseal-tmp-(\d+)-(\d+)-[0-9a-f]{16}$/;
/** Room for the mark, pid, start time and random part within a 255-byte file name. */
const MAX_BASE_BYTES = 180;

/** The start time of `pid` in clock ticks since boot (/proc), or null if it is not running. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Field 22; the command name (field 2) may contain spaces and parentheses: skip past it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

const OWN_START = processStartTime(process.pid) ?? "0";

/** A fresh temporary name next to `target` (`hidden`: with a leading dot, for directories). */
export function tempPathFor(target: string, hidden = false): string {
  let base = basename(target);
  while (Buffer.byteLength(base) > MAX_BASE_BYTES) base = base.slice(0, -1);
  const suffix = `${MARK}${process.pid}-${OWN_START}-${randomBytes(8).toString("hex")}`;
  return join(dirname(target), `${hidden ? "." : ""}${base}${suffix}`);
}

/** True while the process that made temporary `name` may still be running. */
export function writerAlive(pid: number, start: string): boolean {
  if (pid === process.pid) return true;
  const now = processStartTime(pid);
  if (now !== null) return now === start || start === "0";
  if (OWN_START !== "0") return false; // /proc works here, and has no such process
  try {
    process.kill(pid, 0); // no /proc: a pid that exists is treated as the writer
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
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
    const m = TEMP_PATTERN.exec(name);
    if (!m || writerAlive(Number(m[1]), m[2]!)) continue;
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
