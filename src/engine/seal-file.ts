/**
 * sealFile: a regular file to a .tseal file. The plaintext length is known from fstat, so the
 * geometry is fixed up front, the header and payload prefix are written first, and the chunks
 * are sealed in parallel ranges straight into the (pre-sized) temporary output.
 */
import { randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import { deriveChunkKeys, SALT_SIZE, wipeChunkKeys } from "../format/chunked.js";
import { encodeDescriptor } from "../format/descriptor.js";
import { fail } from "../format/errors.js";
import { generateFileKey, payloadInputKey } from "../format/filekey.js";
import { PayloadGeometry } from "../format/geometry.js";
import { DEFAULT_SLOT_CAPACITY, encodeHeader } from "../format/header.js";
import { makeDescriptor } from "../format/message.js";
import { payloadContext } from "../format/payload.js";
import type { Recipient } from "../format/stanza.js";
import { withAtomicOutput } from "./atomic.js";
import { io, writeAll } from "./fsutil.js";
import type { SealOptions, SealResult } from "./options.js";
import { Progress } from "./progress.js";
import { PARALLEL_THRESHOLD, prewarmWorkers, runRanges } from "./run-ranges.js";

export async function sealFile(
  input: string,
  output: string,
  opts: SealOptions,
): Promise<SealResult> {
  const src = await io(`open ${input}`, () => open(input, "r"));
  try {
    const st = await io(`stat ${input}`, () => src.stat());
    if (!st.isFile()) fail("E_USAGE", `${input} is not a regular file: seal it as a stream`);
    const length = st.size;
    void prewarmWorkers(length, opts.workers); // not awaited: start-up overlaps key wrapping
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
        await io("write the header", async () => {
          await writeAll(out.fh, Buffer.concat([header, salt, keys.commitment]), 0);
          await out.fh.truncate(sealedLength);
        });
        const run = () =>
          runRanges({
            mode: "seal",
            inFd: src.fd,
            sink: { kind: "fd", fd: out.fd },
            keys,
            chunkSize: descriptor.chunkSize,
            plaintextLength: length,
            chunksOffset,
            workers: opts.workers,
            progress,
          });
        await (length < PARALLEL_THRESHOLD ? run() : out.whileFlushing(run));
      });
      progress.stop(true);
    } finally {
      progress.stop(false);
      wipeChunkKeys(keys);
    }
    return { descriptor, headerLength: header.length, sealedLength };
  } finally {
    await src.close().catch(() => {});
  }
}

/**
 * Wraps a fresh file key for every recipient, encodes the header and returns the payload input
 * key (the caller derives the chunk keys from it and wipes it); the file key is wiped here.
 */
/** The first recipient that can draw the file key (a KMS) does; the others then wrap it. */
async function drawFileKey(recipients: readonly Recipient[]) {
  for (const by of recipients) {
    const drawn = by.generate ? await by.generate() : null;
    if (drawn) {
      if (drawn.fileKey.length !== 32)
        fail("E_KEY", `${by.id} generated a file key of the wrong size`);
      return { ...drawn, by };
    }
  }
  return null;
}

export async function prepareHeader(
  opts: Pick<SealOptions, "recipients" | "slotCapacity" | "fileKey" | "salt">,
  descriptorBytes: Buffer,
): Promise<{ header: Buffer; inputKey: Buffer; salt: Buffer }> {
  if (opts.recipients.length === 0) fail("E_USAGE", "sealing needs at least one recipient");
  const drawn = opts.fileKey ? null : await drawFileKey(opts.recipients);
  const fileKey = drawn?.fileKey ?? (opts.fileKey ? Buffer.from(opts.fileKey) : generateFileKey());
  try {
    const stanzas = await Promise.all(
      opts.recipients.map((r) => (r === drawn?.by ? drawn.stanza : r.wrap(fileKey))),
    );
    const header = encodeHeader(
      fileKey,
      descriptorBytes,
      stanzas,
      opts.slotCapacity ?? DEFAULT_SLOT_CAPACITY,
    );
    const salt = opts.salt ? Buffer.from(opts.salt) : randomBytes(SALT_SIZE);
    return { header, inputKey: payloadInputKey(fileKey), salt };
  } finally {
    fileKey.fill(0);
  }
}
