/** Messages between the main thread and a range worker (structured-clone friendly). */
import type { ErrorCode } from "../format/errors.js";
import type { RangeSpec } from "./range-job.js";

export interface JobMessage {
  readonly id: number;
  readonly spec: RangeSpec;
  readonly inFd: number;
  readonly outFd: number | null;
  /** Private copies for this job: the worker wipes them when done. */
  readonly aeadKey: Uint8Array;
  readonly baseNonce: Uint8Array;
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
