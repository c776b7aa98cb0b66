/** Option and result types of the engine API. */
import type { Descriptor } from "../format/descriptor.js";
import type { Identity, Recipient } from "../format/stanza.js";
import type { ProgressCallback } from "./progress.js";

export interface SealOptions {
  readonly recipients: readonly Recipient[];
  /** Power of two from 16 KiB to 16 MiB; default 1 MiB (16 KiB is exactly Cobblestone-256). */
  readonly chunkSize?: number;
  readonly contentType?: string;
  /** Encryption context: bound into the payload, checked by `expectContext` when opening. */
  readonly context?: Record<string, string>;
  /** Public labels, readable without a key. */
  readonly labels?: Record<string, string>;
  /** 2: a public (integrity-only) file, recipients [publicRecipient()] (spec/FORMAT.md §2.5). */
  readonly suite?: number;
  readonly slotCapacity?: number;
  /** Worker threads; 0 = main thread only. Default: one fewer than cores, the main thread joining. */
  readonly workers?: number;
  readonly onProgress?: ProgressCallback;
  /** Tests and vectors only: a fixed file key and payload salt (never reuse them). */
  readonly fileKey?: Uint8Array;
  readonly salt?: Uint8Array;
}

export type StreamSealOptions = Omit<SealOptions, "workers"> & {
  /**
   * The input's exact length, when known: recorded in the header (random access, `inspect`);
   * an input that turns out longer or shorter fails the seal (E_IO) before the final chunk.
   */
  readonly plaintextLength?: number;
} & StreamInputOptions;

export interface StreamInputOptions {
  /**
   * The input descriptor is read at explicit offsets from here (its own position is left
   * alone): a regular file's reads are then split across two pool threads, and a seal takes
   * whole chunks straight from a mapping of it (engine/stream-file.ts). Unset: read from the
   * descriptor's position, as a pipe is.
   */
  readonly inputOffset?: number;
}

export interface OpenOptions {
  readonly identities: readonly Identity[];
  /** Each key must be present in the file's encryption context with exactly this value. */
  readonly expectContext?: Readonly<Record<string, string>>;
  /** Refuse a public (integrity-only) file: E_NOT_ENCRYPTED (spec/FORMAT.md §2.5). */
  readonly requireEncrypted?: boolean;
  readonly workers?: number;
  readonly onProgress?: ProgressCallback;
}

export type StreamOpenOptions = Omit<OpenOptions, "workers"> & StreamInputOptions;
export type VerifyOptions = Omit<OpenOptions, "onProgress"> & {
  readonly onProgress?: ProgressCallback;
};

export interface SealResult {
  readonly descriptor: Descriptor;
  readonly headerLength: number;
  /** Total size of the sealed output. */
  readonly sealedLength: number;
}

export interface OpenResult {
  readonly descriptor: Descriptor;
  readonly plaintextLength: number;
  /** Generation of the header slot that unlocked the file. */
  readonly generation: number;
  /** False for a public (integrity-only) file: readable by anyone, not a secret. */
  readonly encrypted?: boolean;
}
