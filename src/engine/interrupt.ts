/**
 * Interrupts while something is being written. Whatever may hold a partial output or plaintext
 * (a temporary file, a temporary directory) registers a synchronous cleanup here. On SIGINT,
 * SIGTERM or SIGHUP the cleanups run and the process then dies of that same signal, so its
 * parent sees what happened (a shell's $? is 130, 143, 129); on any other exit (an uncaught
 * error, process.exit) they run from the `exit` event.
 *
 * The handlers exist only while a cleanup is registered, so the process's own signal behaviour
 * is untouched otherwise. A host that listens for the signal itself (an application embedding
 * the library, `exec` forwarding signals to its child) keeps the decision: then the cleanups run
 * only when it exits. A critical section (a header's two slot writes) defers the exit to its end.
 */
import { constants } from "node:os";

export type Cleanup = () => void;

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const cleanups = new Set<Cleanup>();
let critical = 0;
let deferred: NodeJS.Signals | null = null;
let installed = false;

/** Registers `cleanup` until the returned release function is called. */
export function onInterrupt(cleanup: Cleanup): () => void {
  cleanups.add(cleanup);
  install();
  return () => {
    cleanups.delete(cleanup);
    uninstallIfIdle();
  };
}

/** Runs `fn` to its end even if a signal arrives meanwhile; the exit happens right after. */
export async function uninterruptible<T>(fn: () => Promise<T>): Promise<T> {
  critical++;
  install();
  try {
    return await fn();
  } finally {
    critical--;
    if (critical === 0 && deferred) exitBySignal(deferred);
    uninstallIfIdle();
  }
}

/**
 * Runs every registered cleanup now, then dies of `sig`. Re-raising with the default action
 * rather than process.exit(): exit waits for libuv's threads, and one blocked reading a FIFO
 * that nobody writes would hold the process forever. The caller must not listen for `sig`.
 */
export function exitBySignal(sig: NodeJS.Signals): never {
  runCleanups();
  for (const s of SIGNALS) process.off(s, onSignal); // the last listener gone: default action
  process.kill(process.pid, sig);
  process.exit(128 + (constants.signals[sig] ?? 0)); // only if the signal was not fatal
}

function onSignal(sig: NodeJS.Signals): void {
  if (process.listenerCount(sig) > 1) return; // the host decides; `exit` still cleans up
  if (critical > 0) {
    deferred ??= sig;
    return;
  }
  exitBySignal(sig);
}

/** Synchronous and best effort: one failing cleanup must not stop the others. */
function runCleanups(): void {
  for (const cleanup of [...cleanups]) {
    cleanups.delete(cleanup);
    try {
      cleanup();
    } catch {
      // nothing better to do while exiting
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on("exit", runCleanups);
}

function uninstallIfIdle(): void {
  if (!installed || cleanups.size > 0 || critical > 0) return;
  installed = false;
  deferred = null;
  for (const s of SIGNALS) process.off(s, onSignal);
  process.off("exit", runCleanups);
}
