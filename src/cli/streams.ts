/**
 * `-` means stdin or stdout. A file output of a streaming command still goes through the
 * engine's atomic output (temp file, fsync, rename), so a failed stream leaves nothing behind;
 * a device or FIFO output is written in place, like stdout (engine/output.ts).
 */
import { createReadStream } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { withOutputStream } from "../engine/output.js";

export async function runStream<T>(
  input: string,
  output: string,
  fn: (input: Readable, output: Writable) => Promise<T>,
): Promise<T> {
  const source = input === "-" ? process.stdin : createReadStream(input);
  if (output === "-") return fn(source, process.stdout);
  return withOutputStream(output, (sink) => fn(source, sink));
}
