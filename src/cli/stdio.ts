/**
 * The CLI's stdout and stderr without Node's streams where a run does not need them (issue 11:
 * start-up). Node creates process.stdout and process.stderr on first access: a SyncWriteStream
 * for a file, a socket (loading net) for a pipe, a tty.WriteStream for a terminal; about 0.5 ms
 * of CPU for /dev/null and 1 ms for a pipe. `seal X -o Y` and `open X -o Y` only ask whether
 * stderr is a terminal (for the progress line) and print one line there, which fs.writeSync
 * does without a stream. Once a stream exists, everything goes through it as before (a write to
 * the descriptor could overtake the stream's own where its writes are asynchronous: pipes on
 * macOS).
 */
import { fstatSync, statSync, writeSync } from "node:fs";

/** Whether `watchStderr` runs: until then no direct write (someone may hold the stream). */
let watched = false;
/** Whether process.stderr has been created (seen by the hook watchStderr installs). */
let stderrStream = false;

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
export function watchStderr(): void {
  if (watched) return;
  watched = true;
  whenCreated("stderr", () => {
    stderrStream = true;
  });
}

const direct = () => watched && !stderrStream;

/**
 * process.stderr.isTTY, without creating the stream where the answer is plain: a file, pipe or
 * socket, or /dev/null, is no terminal. Any other character device: Node's answer.
 */
export function stderrIsTerminal(): boolean {
  if (direct()) {
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
 * Writes `text` to stderr: straight to the descriptor while no stream exists, else (or if the
 * descriptor refuses, e.g. EAGAIN on a non-blocking pipe, or fails) through process.stderr,
 * which then handles it as before.
 */
export function writeStderr(text: string): void {
  if (direct()) {
    const buf = Buffer.from(text);
    let at = 0;
    try {
      while (at < buf.length) at += writeSync(2, buf, at);
      return;
    } catch {
      process.stderr.write(buf.subarray(at));
      return;
    }
  }
  process.stderr.write(text);
}
