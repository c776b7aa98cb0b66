/**
 * `-` means stdin or stdout. A file output of a streaming command still goes through the
 * engine's atomic output (temp file, fsync, rename), so a failed stream leaves nothing behind.
 */
import { createReadStream, createWriteStream } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { withAtomicOutput } from "../engine/index.js";

export async function runStream<T>(
  input: string,
  output: string,
  fn: (input: Readable, output: Writable) => Promise<T>,
): Promise<T> {
  const source = input === "-" ? process.stdin : createReadStream(input);
  if (output === "-") return fn(source, process.stdout);
  return withAtomicOutput(output, async (out) => {
    // A stream of its own on the temp path: a stream built on out.fh would keep that handle
    // busy, so commit()'s close would never settle. commit() then fsyncs the same file.
    const sink = createWriteStream(out.tmpPath, { flags: "r+" });
    const result = await fn(source, sink);
    await finished(sink);
    return result;
  });
}
