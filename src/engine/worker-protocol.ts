/**
 * Messages between the main thread and a range worker (structured-clone friendly). Bulk data is
 * never posted: the input is a descriptor the threads share, and the output is a descriptor too
 * or a SharedArrayBuffer (openToMemory), which a message shares rather than copies.
 */
import type { ErrorCode } from "../format/errors.js";
import type { RangeSpec } from "./range-job.js";
import type { SharedSink } from "./sink.js";

export interface JobMessage {
  readonly id: number;
  readonly spec: RangeSpec;
  readonly inFd: number;
  readonly sink: SharedSink;
  /** Private copies for this job: the worker wipes them when done. */
  readonly aeadKey: Uint8Array;
  readonly baseNonce: Uint8Array;
  /** "reseal": private copies of the new file's chunk keys, wiped like the others. */
  readonly resealKeys?: { readonly aeadKey: Uint8Array; readonly baseNonce: Uint8Array };
  /** Shared counter of plaintext bytes done (all jobs of one operation). */
  readonly progress: BigInt64Array;
  /** Shared flag: non-zero tells every job of the operation to stop at the next batch. */
  readonly abort: Int32Array;
}

export type JobReply =
  | { readonly id: number; readonly ok: true }
  | { readonly id: number; readonly ok: false; readonly aborted: true }
  | {
      readonly id: number;
      readonly ok: false;
      readonly aborted?: undefined;
      readonly code: ErrorCode;
      readonly message: string;
    };
