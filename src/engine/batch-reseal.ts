/**
 * One "reseal" batch (range-job.ts): the sealed chunks are read into the thread's batch buffer,
 * opened under the old file's keys, and only once every chunk of the batch authenticated are
 * they sealed under the new file's keys and written to the output at the same chunk indices
 * (the chunk layout is the same; only the header length may differ, hence `shift`). The
 * plaintext never leaves the thread's buffers, which the job wipes when it ends.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { chunkNonce, NONCE_SIZE, TAG_SIZE } from "../format/chunked.js";
import { authFailed, type Batch, type BatchBuffers } from "./batch.js";
import { readExactSync, writeAllSync } from "./fsutil.js";
import type { NativeGcm } from "./native-gcm.js";

export interface ResealTarget {
  /** The new file's descriptor. */
  readonly fd: number;
  readonly key: Uint8Array;
  readonly base: Buffer;
  /** Output offset minus input offset of every sealed chunk. */
  readonly shift: number;
}

export function resealBatch(
  gcm: NativeGcm | null,
  key: Uint8Array,
  base: Buffer,
  b: Batch,
  inFd: number,
  to: ResealTarget,
  bufs: BatchBuffers,
): void {
  const count = b.end - b.first;
  const buf = bufs.input(b.sealedLen);
  readExactSync(inFd, buf, b.sealedStart);
  if (gcm) {
    const r = gcm.openInPlace(key, base, b.first, count, b.cs, buf, 0, b.sealedLen);
    if (r < 0) authFailed(-1 - r);
    gcm.sealInPlace(to.key, to.base, b.first, count, b.cs, buf, 0, b.sealedLen);
  } else {
    jsResealInPlace(key, base, b, buf, to);
  }
  writeAllSync(to.fd, buf, b.sealedStart + to.shift);
}

/** node:crypto twin of openInPlace + sealInPlace: every chunk opens before any is sealed. */
function jsResealInPlace(key: Uint8Array, base: Buffer, b: Batch, buf: Buffer, to: ResealTarget) {
  const nonce = Buffer.alloc(NONCE_SIZE);
  const spans: [number, number][] = [];
  let at = 0;
  for (let k = b.first; k < b.end; k++) {
    const n = Math.min(b.cs, b.total - k * b.cs);
    const d = createDecipheriv("aes-256-gcm", key, chunkNonce(base, k, nonce));
    d.setAuthTag(buf.subarray(at + n, at + n + TAG_SIZE));
    const pt = d.update(buf.subarray(at, at + n));
    try {
      d.final();
    } catch {
      pt.fill(0);
      authFailed(k);
    }
    pt.copy(buf, at);
    pt.fill(0);
    spans.push([at, n]);
    at += n + TAG_SIZE;
  }
  let k = b.first;
  for (const [start, n] of spans) {
    const c = createCipheriv("aes-256-gcm", to.key, chunkNonce(to.base, k++, nonce));
    c.update(buf.subarray(start, start + n)).copy(buf, start);
    c.final(); // GCM is a stream mode: final() returns no bytes
    c.getAuthTag().copy(buf, start + n);
  }
}
