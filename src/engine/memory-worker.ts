/**
 * Worker thread for openToMemory: decrypts one chunk range into the shared output.
 * The file descriptor is the main thread's (threads share the descriptor table: the file that
 * was opened and authenticated is the one read); keys arrive as private copies, wiped after.
 */
import { parentPort } from "node:worker_threads";
import { isTensorSealError } from "../format/errors.js";
import { type ChunkRange, decryptRangeInto } from "./decrypt-into.js";

export interface LoadJob {
  readonly range: ChunkRange;
  readonly aeadKey: Uint8Array;
  readonly baseNonce: Uint8Array;
  readonly out: SharedArrayBuffer;
}

export type LoadReply = { ok: true } | { ok: false; code: string; message: string };

parentPort?.on("message", (job: LoadJob) => {
  let reply: LoadReply;
  try {
    decryptRangeInto(job.range, job, new Uint8Array(job.out));
    reply = { ok: true };
  } catch (e) {
    reply = isTensorSealError(e)
      ? { ok: false, code: e.code, message: e.message }
      : { ok: false, code: "E_IO", message: `load worker failed: ${(e as Error)?.message ?? e}` };
  } finally {
    job.aeadKey.fill(0);
    job.baseNonce.fill(0);
  }
  parentPort?.postMessage(reply);
});
