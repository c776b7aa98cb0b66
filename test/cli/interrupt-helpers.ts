/**
 * For the interrupt and crash tests: start the CLI as a child we can signal, and see what it
 * has open. A temporary output shows in /proc/PID/fd either by its name (named temp) or as
 * "DIR/#INODE (deleted)" (an anonymous O_TMPFILE file), so a test can wait until the output is
 * really being written before it interrupts, without guessing a delay.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { startTimeOf } from "../../src/engine/process-stamp.js";
import { CLI, type Sandbox } from "./helpers.js";

export interface Running {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  /** Exit status: the code, or 128 + signal number when a signal ended it. */
  readonly exited: Promise<number>;
}

export function start(s: Sandbox, args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...s.env, ...env },
    cwd: s.dir,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number>((resolve) => {
    child.on("close", (code, signal) => {
      const signals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
      resolve(code ?? 128 + (signals[signal ?? ""] ?? 0));
    });
  });
  return { child, stderr: () => stderr, exited };
}

/** Paths the process has open under `dir` (deleted ones end in " (deleted)"). */
export function openPaths(pid: number, dir: string): { path: string; size: number }[] {
  const out: { path: string; size: number }[] = [];
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const path = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (path.startsWith(`${dir}/`))
        out.push({ path, size: statSync(`/proc/${pid}/fd/${fd}`).size });
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Waits until `pred` holds (polling), or fails after `ms`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | null | undefined,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** Whether `pid` still runs (a zombie counts as gone). */
export const alive = (pid: number): boolean => startTimeOf(pid) !== null;

/**
 * The exec guardian (argv [node, exec-guardian.js, ...]) whose argv `matches`, or null: found
 * through /proc, as a test sees it whatever became of the exec that started it.
 */
export function execGuardian(matches: (argv: readonly string[]) => boolean): number | null {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      if (argv[1]?.endsWith("exec-guardian.js") && matches(argv)) return Number(name);
    } catch {
      // gone meanwhile
    }
  }
  return null;
}
