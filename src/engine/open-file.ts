/**
 * openFile and verifyFile: every check that needs no decryption happens first (see
 * sealed-header.ts), then the chunks are opened in parallel ranges. openFile writes only
 * authenticated chunks into a temporary output that replaces the target only if every chunk
 * authenticated; verifyFile writes nothing.
 */
import { fstatSync, ftruncateSync } from "node:fs";
import { wipeChunkKeys } from "../format/chunked.js";
import { namingFile } from "../format/errors.js";
import { isPublicSuite } from "../format/public.js";
import { type AtomicOutput, withAtomicOutput } from "./atomic.js";
import { closeDirect, openDirect } from "./direct-write.js";
import { ioSync, withFileInput } from "./fsutil.js";
import type { OpenOptions, OpenResult, VerifyOptions } from "./options.js";
import { outputKind, withOutputStream } from "./output.js";
import { Progress } from "./progress.js";
import { runRangesFor } from "./public-ranges.js";
import { fileThreads, PARALLEL_THRESHOLD, prewarmWorkers } from "./run-ranges.js";
import { unlockFile } from "./sealed-header.js";
import { fdSink } from "./sink.js";
import { openStream } from "./stream.js";

/** Errors about the sealed file's contents name `input` (format/errors.ts, namingFile). */
export function openFile(input: string, output: string, opts: OpenOptions): Promise<OpenResult> {
  return namingFile(input, async () => {
    if ((await outputKind(output)) === "special") {
      // A device or FIFO is written in place as a stream (output.ts): like stdout, it receives
      // each chunk once that chunk authenticated. The file is read as `open FILE -o -` reads it
      // (stream-file.ts: preads from offset 0 into reused buffers), not through a ReadStream's
      // fresh 64 KiB buffer per read.
      return withFileInput(input, (fd) =>
        withOutputStream(output, (w) => openStream(fd, w, { ...opts, inputOffset: 0 })),
      );
    }
    return openOrVerify(input, output, opts);
  });
}

export function verifyFile(input: string, opts: VerifyOptions): Promise<OpenResult> {
  return namingFile(input, () => openOrVerify(input, null, opts));
}

async function openOrVerify(
  input: string,
  output: string | null,
  opts: OpenOptions,
): Promise<OpenResult> {
  return withFileInput(input, async (inFd) => {
    const { size } = ioSync(`stat ${input}`, () => fstatSync(inFd));
    const threads = fileThreads(opts.workers, size); // the sealed size bounds the plaintext's
    void prewarmWorkers(size, threads.workers); // not awaited: start-up overlaps unlocking
    const file = await unlockFile(inFd, input, size, opts);
    const progress = new Progress(file.plaintextLength, opts.onProgress);
    try {
      const run = (outFd: number | null, directFd: number | null = null) =>
        runRangesFor({
          mode: outFd === null ? "verify" : "open",
          inFd,
          sink: fdSink(outFd, directFd),
          keys: file.keys,
          chunkSize: file.header.descriptor.chunkSize,
          plaintextLength: file.plaintextLength,
          chunksOffset: file.chunksOffset,
          ...threads,
          progress,
        });
      if (output === null) await run(null);
      else await withAtomicOutput(output, (out) => presize(out, file.plaintextLength, run));
      progress.stop(true);
    } finally {
      progress.stop(false);
      wipeChunkKeys(file.keys);
    }
    return {
      descriptor: file.header.descriptor,
      plaintextLength: file.plaintextLength,
      generation: file.header.generation,
      encrypted: !isPublicSuite(file.header.descriptor.suite),
    };
  });
}

async function presize(
  out: AtomicOutput,
  length: number,
  run: (fd: number, directFd: number | null) => Promise<void>,
): Promise<void> {
  ioSync("size the output", () => ftruncateSync(out.fd, length));
  if (length < PARALLEL_THRESHOLD) return run(out.fd, null);
  // Around the page cache where the file system allows (direct-write.ts); otherwise flushed in
  // the background while the CPUs decrypt.
  const directFd = openDirect(out.fd);
  try {
    await (directFd !== null ? run(out.fd, directFd) : out.whileFlushing(() => run(out.fd, null)));
  } finally {
    closeDirect(directFd);
  }
}
