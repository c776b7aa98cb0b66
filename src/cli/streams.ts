/**
 * `-` means stdin or stdout. Inputs are read as descriptors (large reads into one buffer, see
 * engine/stream-io.ts; a regular file opened here is read from offset 0 at explicit offsets,
 * engine/stream-file.ts). A file output of a streaming command still goes through the engine's
 * atomic output (temp file, fsync, rename), so a failed stream leaves nothing behind; a device
 * or FIFO output is written in place, like stdout (engine/output.ts).
 */
import { open } from "node:fs/promises";
import type { Writable } from "node:stream";
import { withOutputStream } from "../engine/output.js";

export async function runStream<T>(
  input: string,
  output: string,
  fn: (input: number, output: Writable, inputOffset?: number) => Promise<T>,
): Promise<T> {
  if (input === "-") return withOutput(0, output, (r, w) => fn(r, w));
  // A FIFO's open waits for its writer (on the thread pool: signals are still handled).
  const fh = await open(input, "r");
  try {
    // Opened here, so it starts at 0 (stdin may not: someone else's descriptor).
    return await withOutput(fh.fd, output, (r, w) => fn(r, w, 0));
  } finally {
    await fh.close().catch(() => {});
  }
}

function withOutput<T>(
  fd: number,
  output: string,
  fn: (input: number, output: Writable) => Promise<T>,
): Promise<T> {
  if (output === "-") return fn(fd, process.stdout);
  return withOutputStream(output, (sink) => fn(fd, sink));
}
