import { fstatSync, ftruncateSync } from "node:fs";
import { deriveChunkKeys, wipeChunkKeys } from "../format/chunked.js";
import { encodeDescriptor } from "../format/descriptor.js";
import { fail } from "../format/errors.js";
import { PayloadGeometry } from "../format/geometry.js";
import { makeDescriptor } from "../format/message.js";
import { payloadContext } from "../format/payload.js";
import { withAtomicOutput } from "./atomic.js";
import { closeDirect, openDirect } from "./direct-write.js";
import { ioSync, withFileInput, writeAllSync } from "./fsutil.js";
import type { SealOptions, SealResult } from "./options.js";
import { outputKind, withOutputStream } from "./output.js";
import { Progress } from "./progress.js";
import { runRangesFor } from "./public-ranges.js";
import { fileThreads, PARALLEL_THRESHOLD, prewarmWorkers } from "./run-ranges.js";
import { prepareHeader } from "./seal-header.js";
import { fdSink } from "./sink.js";
import { sealStream } from "./stream.js";

export async function sealFile(
  input: string,
  output: string,
  opts: SealOptions,
): Promise<SealResult> {
  if ((await outputKind(output)) === "special") {
    // A device or FIFO takes a stream in place (output.ts); the input is still a file, read as
    // `seal FILE -o -` reads it (stream-file.ts), not through a ReadStream.
    return withFileInput(input, (fd) =>
      withOutputStream(output, (w) => sealStream(fd, w, { ...opts, inputOffset: 0 })),
    );
  }
  return withFileInput(input, async (inFd) => {
    const st = ioSync(`stat ${input}`, () => fstatSync(inFd));
    if (!st.isFile()) fail("E_USAGE", `${input} is not a regular file: seal it as a stream`);
    const length = st.size;
    const threads = fileThreads(opts.workers, length);
    void prewarmWorkers(length, threads.workers); // not awaited: start-up overlaps key wrapping
    const descriptor = makeDescriptor(opts, length);
    const descriptorBytes = encodeDescriptor(descriptor);
    const payloadLength = new PayloadGeometry(descriptor.chunkSize).payloadLength(length);
    const { header, inputKey, salt } = await prepareHeader(opts, descriptorBytes);
    const keys = deriveChunkKeys(
      inputKey,
      salt,
      payloadContext(descriptorBytes),
      descriptor.chunkSize,
    );
    inputKey.fill(0);
    const chunksOffset = header.length + salt.length + keys.commitment.length;
    const sealedLength = header.length + payloadLength;
    const progress = new Progress(length, opts.onProgress);
    try {
      await withAtomicOutput(output, async (out) => {
        ioSync("write the header", () => {
          writeAllSync(out.fd, Buffer.concat([header, salt, keys.commitment]), 0);
          ftruncateSync(out.fd, sealedLength);
        });
        // Large outputs go around the page cache where the file system allows (direct-write.ts);
        // otherwise they are flushed in the background while the CPUs encrypt.
        const directFd = length < PARALLEL_THRESHOLD ? null : openDirect(out.fd);
        const run = () =>
          runRangesFor({
            mode: "seal",
            inFd,
            sink: fdSink(out.fd, directFd),
            keys,
            chunkSize: descriptor.chunkSize,
            plaintextLength: length,
            chunksOffset,
            ...threads,
            progress,
          });
        try {
          await (length < PARALLEL_THRESHOLD || directFd !== null ? run() : out.whileFlushing(run));
        } finally {
          closeDirect(directFd);
        }
      });
      progress.stop(true);
    } finally {
      progress.stop(false);
      wipeChunkKeys(keys);
    }
    return { descriptor, headerLength: header.length, sealedLength };
  });
}
