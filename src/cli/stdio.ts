/**
 * The CLI's stdout and stderr without Node's streams where a run does not need them (issue 11:
 * start-up). Node creates process.stdout and process.stderr on first access: a SyncWriteStream
 * for a file, a socket (loading net) for a pipe, a tty.WriteStream for a terminal; about 0.5 ms
 * of CPU for /dev/null and 1 ms for a pipe (2.5 ms of `inspect`'s profile). `seal X -o Y` and
 * `open X -o Y` only ask whether stderr is a terminal (for the progress line) and print one line
 * there, `inspect` and the other printing commands write lines to stdout: fs.writeSync does both
 * without a stream (synchronous, as Node's own stdout is for files and, on Linux, pipes). Once a
 * stream exists, everything goes through it as before (a write to the descriptor could overtake
 * the stream's own where its writes are asynchronous: pipes on macOS).
 */
import { fstatSync, statSync, writeSync } from "node:fs";

/** Whether `watchStdio` runs: until then no direct write (someone may hold the streams). */
let watched = false;
/** Which of process.stdout and process.stderr have been created (seen by watchStdio's hooks). */
const created = { stdout: false, stderr: false };

/**
 * Runs `fn` with process[name] when something first reads it, not before; at once where
 * process[name] is not Node's lazy getter. Node's getter is put back at the first read.
 */
export function whenCreated(
  name: "stdout" | "stderr",
  fn: (stream: NodeJS.WriteStream) => void,
): void {
  const own = Object.getOwnPropertyDescriptor(process, name);
  if (!own?.get || !own.configurable) {
    fn(process[name]);
    return;
  }
  const get = own.get;
  Object.defineProperty(process, name, {
    configurable: true,
    enumerable: own.enumerable ?? true,
    get() {
      Object.defineProperty(process, name, own);
      const stream = get.call(process) as NodeJS.WriteStream;
      fn(stream);
      return stream;
    },
  });
}

/** Called once at the start of a CLI run (run.ts), before anything writes. */
export function watchStdio(): void {
  if (watched) return;
  watched = true;
  for (const name of ["stdout", "stderr"] as const) {
    whenCreated(name, () => {
      created[name] = true;
    });
  }
}

const direct = (name: "stdout" | "stderr") => watched && !created[name];

/**
 * process.stderr.isTTY, without creating the stream where the answer is plain: a file, pipe or
 * socket, or /dev/null, is no terminal. Any other character device: Node's answer.
 */
export function stderrIsTerminal(): boolean {
  if (direct("stderr")) {
    try {
      const st = fstatSync(2);
      if (!st.isCharacterDevice()) return false;
      if (st.rdev === statSync("/dev/null").rdev) return false;
    } catch {
      // fd 2 closed, or no /dev/null: Node's stream decides
    }
  }
  return process.stderr.isTTY === true;
}

/**
 * Writes `text` to stdout or stderr: straight to the descriptor while no stream exists, else (or
 * if the descriptor refuses, e.g. EAGAIN on a non-blocking pipe, or fails: EPIPE, ENOSPC)
 * through Node's stream, which then handles it (and its error) as before.
 */
function writeTo(name: "stdout" | "stderr", fd: number, text: string): void {
  if (direct(name)) {
    const buf = Buffer.from(text);
    let at = 0;
    try {
      while (at < buf.length) at += writeSync(fd, buf, at);
      return;
    } catch {
      process[name].write(buf.subarray(at));
      return;
    }
  }
  process[name].write(text);
}

export function writeStdout(text: string): void {
  writeTo("stdout", 1, text);
}

export function writeStderr(text: string): void {
  writeTo("stderr", 2, text);
}
