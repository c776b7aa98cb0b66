/**
 * Standard output for a stream's plaintext or sealed bytes, written on the thread pool.
 * Node writes a pipe on stdout synchronously on Linux, on the JS thread: profiled through
 * `cat | tensorseal open - -o - | cat`, that thread spent most of its time copying into the
 * pipe or blocked on a full one, and read, submitted no cipher work and wrote nothing else
 * meanwhile (docs/BENCHMARKS.md, streams on Node 20 and 24). Here each write is fs.write on a
 * pool thread, so the JS thread goes on reading while a slow consumer drains the pipe.
 * A pipe is written through a descriptor of its own (/proc/self/fd/1 opened again), which is
 * blocking even when fd 1's was made non-blocking (Node does that once process.stdout exists).
 * A descriptor that is non-blocking still answers EAGAIN before any byte is written: from then
 * on the bytes go through process.stdout, as before.
 */
import { closeSync, fstatSync, openSync, write } from "node:fs";
import { Writable } from "node:stream";
import { isatty } from "node:tty";
import { REUSES_BUFFERS, widenPipe } from "./stream-io.js";

/** Up to this much per write (larger writes into a 1 MiB pipe only block longer). */
const WRITE_BYTES = 1 << 20;

/**
 * Standard output for a stream: a StdoutWriter for a pipe, socket or file; process.stdout for a
 * terminal or a device such as /dev/null (written synchronously there at no cost).
 */
export function streamStdout(): Writable {
  let st: ReturnType<typeof fstatSync>;
  try {
    st = fstatSync(1);
  } catch {
    return process.stdout;
  }
  if (isatty(1) || !(st.isFIFO() || st.isSocket() || st.isFile())) return process.stdout;
  if (!st.isFile()) widenPipe(1);
  return new StdoutWriter(st.isFIFO() ? reopen() : null);
}

/** A blocking descriptor of its own for the pipe on fd 1, or null (then fd 1 itself). */
function reopen(): number | null {
  try {
    return openSync("/proc/self/fd/1", "w");
  } catch {
    return null;
  }
}

export class StdoutWriter extends Writable {
  /** Its callback means the bytes left (into the pipe, or process.stdout's callback). */
  readonly [REUSES_BUFFERS] = true;
  private viaStdout = false;
  private readonly fd: number;

  /** `own`: a descriptor for fd 1's pipe that this writer closes, or null to write fd 1. */
  constructor(private readonly own: number | null = null) {
    super({ highWaterMark: WRITE_BYTES, decodeStrings: true });
    this.fd = own ?? 1;
  }

  override _destroy(e: Error | null, done: (e?: Error | null) => void): void {
    if (this.own !== null) closeSync(this.own);
    done(e);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    if (this.viaStdout) {
      process.stdout.write(chunk, (e) => done(e));
      return;
    }
    const next = (at: number): void => {
      if (at >= chunk.length) {
        done();
        return;
      }
      const n = Math.min(WRITE_BYTES, chunk.length - at);
      write(this.fd, chunk, at, n, null, (e, wrote) => {
        if (e && (e as NodeJS.ErrnoException).code === "EAGAIN") {
          this.viaStdout = true; // nothing of this piece was written: the rest as before
          process.stdout.write(chunk.subarray(at), (e2) => done(e2));
        } else if (e) done(e);
        else next(at + wrote);
      });
    };
    next(0);
  }
}
