/**
 * `-` means stdin or stdout. A file output of a streaming command still goes through the
 * engine's atomic output (temp file, fsync, rename), so a failed stream leaves nothing behind.
 */
import { createReadStream } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { withAtomicOutput } from "../engine/index.js";

export async function runStream<T>(
  input: string,
  output: string,
  fn: (input: Readable, output: Writable) => Promise<T>,
): Promise<T> {
  const source = input === "-" ? process.stdin : createReadStream(input);
  if (output === "-") return fn(source, process.stdout);
  return withAtomicOutput(output, (out) =>
    fn(source, out.fh.createWriteStream({ autoClose: false })),
  );
}
