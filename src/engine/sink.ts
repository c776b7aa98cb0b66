/**
 * Where a chunk range's output goes. One range loop (range-job.ts) serves every caller; only the
 * destination differs, and each destination keeps its own rule about unauthenticated plaintext:
 *
 * - `fd`: a file descriptor, at the byte's absolute offset (sealed offsets when sealing,
 *   plaintext offsets when opening). Opening writes a batch only after every chunk in it
 *   authenticated, so unauthenticated plaintext never reaches the file.
 * - `memory`: a caller's buffer, at plaintext offsets (opening only: openToMemory). Chunks are
 *   opened straight into it, so a chunk that fails authentication is wiped there before the
 *   error is raised; the caller wipes the rest and never hands the buffer out.
 * - `discard`: nothing kept (verifying, or sealing for a throughput measurement).
 */
export type RangeSink =
  | {
      readonly kind: "fd";
      readonly fd: number;
      /**
       * The same file opened with O_DIRECT (direct-write.ts), when the caller could: the
       * aligned part of each batch's output goes through it, around the page cache.
       */
      readonly directFd?: number;
    }
  | { readonly kind: "memory"; readonly buffer: ArrayBuffer | SharedArrayBuffer }
  | { readonly kind: "discard" };

/**
 * A sink a worker thread can write: memory only when shared. An ArrayBuffer would be copied into
 * the worker, so the caller would never see (or wipe) the plaintext written there.
 */
export type SharedSink =
  | Exclude<RangeSink, { kind: "memory" }>
  | { readonly kind: "memory"; readonly buffer: SharedArrayBuffer };

export const DISCARD: RangeSink = { kind: "discard" };

export function fdSink(fd: number | null, directFd: number | null = null): RangeSink {
  if (fd === null) return DISCARD;
  return directFd === null ? { kind: "fd", fd } : { kind: "fd", fd, directFd };
}

export function isShareable(sink: RangeSink): sink is SharedSink {
  return sink.kind !== "memory" || sink.buffer instanceof SharedArrayBuffer;
}
