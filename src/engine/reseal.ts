/**
 * Reseal: a sealed file encrypted anew under a fresh file key (new salt, new nonce base, new
 * commitment), for the recipients the caller chooses, with the same descriptor (length, chunk
 * size, content type, context, labels) and slot capacity. Where rewrap only changes who may
 * unwrap the old file key, a reseal makes that key worthless for the new file: whoever learned
 * it (a recipient removed since, a leaked key) cannot read what is written now.
 *
 * One pass, in parallel: each range job reads sealed chunks, opens them under the old keys and
 * seals them under the new ones in its own batch buffer (range-job.ts, mode "reseal"); no
 * plaintext is written anywhere, and the old file's every check (header MAC, commitment, every
 * chunk's tag, the final chunk's length) runs before the new file may replace it. The new file
 * is an atomic output (temp + fsync + rename over the old name, atomic.ts): a crash or an
 * interrupt at any point leaves the old file or the new one, each complete and valid. The old
 * file's permission bits are kept. A file with other hard links is refused: the rename would
 * leave the old version, which the old file key opens, under the other names.
 */
import { createHash } from "node:crypto";
import { fchmodSync, fstatSync, ftruncateSync } from "node:fs";
import { deriveChunkKeys, PAYLOAD_PREFIX_SIZE, wipeChunkKeys } from "../format/chunked.js";
import { fail, namingFile } from "../format/errors.js";
import type { ParsedHeader } from "../format/header.js";
import { payloadContext } from "../format/payload.js";
import { refuseRecipientChange } from "../format/public.js";
import type { Identity, Recipient } from "../format/stanza.js";
import { withAtomicOutput } from "./atomic.js";
import { ioSync, readExactFd, withFileInput, writeAllSync } from "./fsutil.js";
import type { ProgressCallback } from "./progress.js";
import { Progress } from "./progress.js";
import { PARALLEL_THRESHOLD, prewarmWorkers, runRanges } from "./run-ranges.js";
import { prepareHeader } from "./seal-header.js";
import { unlockFile } from "./sealed-header.js";

export interface ResealOptions {
  readonly identities: readonly Identity[];
  /** The new file's recipients, chosen from the old (authenticated) header. */
  readonly recipients: (header: ParsedHeader) => Promise<readonly Recipient[]>;
  readonly workers?: number;
  readonly onProgress?: ProgressCallback;
  /**
   * Called once the new file is complete, just before it is synced and replaces the old one, with
   * both header digests (a campaign journals the new one: a crash right after the rename then
   * finds the file already done), the new header's bytes and the old (authenticated) header (a
   * key service's registry learns of the new file here). A throw leaves the old file in place.
   */
  readonly beforeCommit?: (commit: ResealCommit) => Promise<void>;
}

export interface ResealCommit {
  readonly old: string;
  readonly new: string;
  /** The new file's header bytes (public metadata and wrapped file keys only). */
  readonly header: Uint8Array;
  /** The old file's header, authenticated. */
  readonly oldHeader: ParsedHeader;
}

export interface ResealResult {
  /** SHA-256 of the old and the new header bytes (prefix, descriptor, both slots). */
  readonly oldHeaderDigest: string;
  readonly newHeaderDigest: string;
  readonly plaintextLength: number;
  readonly sealedLength: number;
  /** Ids of the new file's recipients. */
  readonly recipients: readonly string[];
}

/** "sha256:" and the hex SHA-256 of a header's bytes: how reports name one header version. */
export function headerDigest(headerBytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(headerBytes).digest("hex")}`;
}

/** Errors about the file's contents name `path` (format/errors.ts, namingFile). */
export function resealFile(path: string, opts: ResealOptions): Promise<ResealResult> {
  return namingFile(path, () => resealInPlace(path, opts));
}

async function resealInPlace(path: string, opts: ResealOptions): Promise<ResealResult> {
  return withFileInput(path, async (inFd) => {
    const st = ioSync(`stat ${path}`, () => fstatSync(inFd));
    if (st.nlink > 1)
      fail(
        "E_USAGE",
        `it has ${st.nlink} hard links: the new file replaces only this name, and the others would keep the version the old file key opens (remove them, or reseal a copy)`,
      );
    void prewarmWorkers(st.size, opts.workers); // not awaited: start-up overlaps unlocking
    const old = await unlockFile(inFd, path, st.size, opts);
    try {
      refuseRecipientChange(old.header.descriptor.suite, "reseal"); // before anything is written
      const { header, plaintextLength } = old;
      const oldHeaderDigest = headerDigest(await readExactFd(inFd, header.headerLength, 0));
      const recipients = await opts.recipients(header);
      const descriptorBytes = header.descriptorBytes;
      const fresh = await prepareHeader(
        { recipients, slotCapacity: header.slotCapacity },
        descriptorBytes,
      );
      const next = deriveChunkKeys(
        fresh.inputKey,
        fresh.salt,
        payloadContext(descriptorBytes),
        header.descriptor.chunkSize,
      );
      fresh.inputKey.fill(0);
      const newHeaderDigest = headerDigest(fresh.header);
      const outChunksOffset = fresh.header.length + PAYLOAD_PREFIX_SIZE;
      const sealedLength = outChunksOffset + (st.size - old.chunksOffset);
      const progress = new Progress(plaintextLength, opts.onProgress);
      try {
        await withAtomicOutput(path, async (out) => {
          ioSync("write the header", () => {
            writeAllSync(out.fd, Buffer.concat([fresh.header, fresh.salt, next.commitment]), 0);
            ftruncateSync(out.fd, sealedLength);
            fchmodSync(out.fd, st.mode & 0o777);
          });
          const run = () =>
            runRanges({
              mode: "reseal",
              inFd,
              sink: { kind: "fd", fd: out.fd },
              keys: { ...old.keys, resealKeys: next },
              chunkSize: header.descriptor.chunkSize,
              plaintextLength,
              chunksOffset: old.chunksOffset,
              outChunksOffset,
              workers: opts.workers,
              progress,
            });
          await (plaintextLength < PARALLEL_THRESHOLD ? run() : out.whileFlushing(run));
          await opts.beforeCommit?.({
            old: oldHeaderDigest,
            new: newHeaderDigest,
            header: fresh.header,
            oldHeader: header,
          });
        });
        progress.stop(true);
      } finally {
        progress.stop(false);
        wipeChunkKeys(next);
      }
      return {
        oldHeaderDigest,
        newHeaderDigest,
        plaintextLength,
        sealedLength,
        recipients: recipients.map((r) => r.id),
      };
    } finally {
      wipeChunkKeys(old.keys);
    }
  });
}
