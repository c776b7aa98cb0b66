/**
 * Which process owns something, in a form that outlives it: the pid namespace, the pid and the
 * process's start time (clock ticks since boot, /proc/PID/stat field 22). A pid is reused after
 * its process dies, the triple is not, so a later process can tell a dead owner from a live one.
 * Linux only; elsewhere there is no stamp and nothing is ever judged dead.
 */
import { readFileSync, readlinkSync } from "node:fs";

export interface ProcessStamp {
  readonly ns: string;
  readonly pid: number;
  readonly start: string;
}

/** The start time of `pid` as /proc shows it; null when no such process runs here (a zombie has ended). */
export function startTimeOf(pid: number): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return null;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return null;
  const start = fields[19]; // field 22 of the whole line; fields[] starts at field 3
  return start && /^\d+$/.test(start) ? start : null;
}

/** The inode number of this process's pid namespace ("pid:[4026531836]"), or null. */
export function pidNamespace(): string | null {
  try {
    return /^pid:\[(\d+)\]$/.exec(readlinkSync("/proc/self/ns/pid"))?.[1] ?? null;
  } catch {
    return null;
  }
}

export function selfStamp(): ProcessStamp | null {
  const ns = pidNamespace();
  const start = startTimeOf(process.pid);
  return ns && start ? { ns, pid: process.pid, start } : null;
}

/**
 * False only when the owner is certainly gone: same pid namespace, and its pid is free or now
 * belongs to a process that started at another time. Another namespace cannot be checked.
 */
export function mayBeAlive(owner: ProcessStamp): boolean {
  if (owner.ns !== pidNamespace()) return true;
  return startTimeOf(owner.pid) === owner.start;
}
