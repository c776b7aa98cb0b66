/**
 * exec's guardian: a small process that `tensorseal exec` starts before it writes any plaintext.
 * It starts the command on request, in a session and process group of its own, and holds an IPC
 * channel to exec. When that channel closes (exec finished, crashed, or was killed even with
 * SIGKILL) it SIGKILLs the command's whole process group (children and grandchildren included),
 * wipes the RAM directories (the models', and the outputs' with --seal-outputs: the outputs of a
 * killed exec are lost, never left in plaintext) and exits. When the command exits first it kills
 * what is left of its group, so no worker keeps reading the plaintext.
 *
 * It runs with an empty environment and learns the command's environment (already filtered, no
 * secrets) over the channel, so nothing of it shows in /proc/PID/cmdline or environ. Signals sent
 * to the guardian itself are ignored: exec decides, or exec's death does.
 *
 * Requests (from exec): { run: { file, argv0, args, env } } | { signal, group } | { kill: true }.
 * Reports (to exec):   { pid } | { error: errno code } | { exit: code, signal }.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { basename } from "node:path";
import { ramDirOwner, wipeDirSync } from "./ram-dir.js";

export interface RunRequest {
  readonly file: string;
  readonly argv0: string;
  readonly args: readonly string[];
  readonly env: Record<string, string>;
}

export type GuardianRequest =
  | { readonly run: RunRequest }
  | { readonly signal: NodeJS.Signals; readonly group: boolean }
  | { readonly kill: true };

export type GuardianReport =
  | { readonly pid: number }
  | { readonly error: string }
  | { readonly exit: number | null; readonly signal: NodeJS.Signals | null };

function guard(dirs: readonly string[]): void {
  let child: ChildProcess | null = null;
  let running = false;
  let execGone = false;

  const report = (m: GuardianReport) => {
    if (process.connected) process.send?.(m);
  };
  const killGroup = () => {
    try {
      if (child?.pid) process.kill(-child.pid, "SIGKILL");
    } catch {
      // ESRCH: the group is already empty
    }
  };
  const finish = (): never => {
    for (const dir of dirs) wipeDirSync(dir); // exec normally wiped already: a killed exec's path
    process.exit(0);
  };

  for (const s of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(s, () => {});
  process.on("error", () => {}); // a report sent as exec goes away: "disconnect" follows

  process.on("message", (m: GuardianRequest) => {
    if ("run" in m && child === null) {
      const r = m.run;
      child = spawn(r.file, [...r.args], {
        argv0: r.argv0,
        env: r.env,
        stdio: "inherit",
        detached: true, // setsid: its own process group, which killGroup can reach entirely
      });
      child.once("error", (e: NodeJS.ErrnoException) => {
        if (!running) report({ error: e.code ?? "error" });
        if (!running && execGone) finish();
      });
      if (child.pid === undefined) return; // the "error" event follows
      running = true;
      report({ pid: child.pid });
      child.once("exit", (code, signal) => {
        running = false;
        killGroup();
        report({ exit: code, signal });
        if (execGone) finish();
      });
    } else if ("signal" in m && running) {
      try {
        process.kill(m.group ? -child!.pid! : child!.pid!, m.signal);
      } catch {
        // ESRCH: it is exiting; its "exit" follows
      }
    } else if ("kill" in m && running) {
      killGroup();
    }
  });

  if (!process.connected) finish(); // exec was gone before we started
  process.on("disconnect", () => {
    execGone = true;
    if (!running) finish();
    killGroup(); // the child's "exit" then finishes
  });
}

// The models' RAM directory, and the outputs' one for --seal-outputs.
const dirs = process.argv.slice(2);
if (dirs.length === 0 || dirs.some((d) => ramDirOwner(basename(d)) === null) || !process.send) {
  process.stderr.write("tensorseal: exec-guardian is started by `tensorseal exec` only\n");
  process.exit(2);
}
guard(dirs);
