/**
 * What the HTTP and S3 sources share: a RandomSource over an object that answers ranged reads.
 * Opening fetches one probe range from offset 0 (size and ETag come with it, and the header of
 * a sealed file usually lies inside it: no extra round trip); reads inside the probe are served
 * from it. Larger reads are split into parts fetched in parallel, at most `concurrency`
 * requests in flight per source, so memory stays bounded by what the caller asked for plus the
 * parts in flight.
 *
 * Whole-file reads (open, verify, a full load) use `stream` instead: one request for
 * everything past the probe, pinned to the probed ETag like every range, its bytes landing in
 * pieces as they arrive (read into them by the socket where the body can: Body.into). Ranged parts cost a request each and, on a fast link, measured 0.71x of one GET
 * (docs/BENCHMARKS.md); random access (one tensor, inspect) keeps `read`.
 */

import { setTimeout as sleep } from "node:timers/promises";
import type { RandomSource } from "../../engine/source.js";
import { fail, isTensorSealError } from "../../format/errors.js";

/** The first range fetched: the .tseal header (two 8 KiB slots by default) and the payload start. */
export const PROBE_BYTES = 64 << 10;
/** One request's range when a read is split. */
export const PART_BYTES = 8 << 20;
export const DEFAULT_CONCURRENCY = 8;

export interface RangedOptions {
  /** Requests in flight at once (default 8). */
  readonly concurrency?: number;
  /** Bytes per request when a read is split (default 8 MiB). */
  readonly partBytes?: number;
  /** Attempts per request, the first included; for a stream, in a row without progress (default 5). */
  readonly attempts?: number;
  /** First backoff in ms, doubled per retry with jitter (default 200). */
  readonly backoffMs?: number;
}

/**
 * An answer's body, its headers already checked: the bytes of the range asked for. A Readable
 * (the AWS SDK's), or http1.ts's RawResponse, whose 'data' views are reused after the call.
 */
export interface Body {
  on(event: "data", fn: (c: Uint8Array) => void): unknown;
  on(event: "end" | "close", fn: () => void): unknown;
  on(event: "error", fn: (e: Error) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  destroy(): unknown;
  /** Where the next bytes should land, if the body can read into the consumer's memory. */
  into?(target: () => Uint8Array): void;
}

/** Whole pieces a streamed body may hold for a consumer that is busy before it pauses. */
const PIECES_AHEAD = 2;

/** What one ranged fetch learned of the object: its total size and its ETag (if any). */
export interface Probe {
  readonly size: number;
  readonly etag: string | null;
  readonly head: Buffer;
}

export abstract class RangedSource implements RandomSource {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly concurrency: number;
  private readonly partBytes: number;
  protected readonly attempts: number;
  protected readonly backoffMs: number;
  private closed = false;

  protected constructor(
    readonly name: string,
    protected readonly probe: Probe,
    opts: RangedOptions,
  ) {
    this.concurrency = Math.max(1, opts.concurrency ?? DEFAULT_CONCURRENCY);
    this.partBytes = Math.max(1, opts.partBytes ?? PART_BYTES);
    this.attempts = Math.max(1, opts.attempts ?? 5);
    this.backoffMs = opts.backoffMs ?? 200;
  }

  get size(): number {
    return this.probe.size;
  }

  /** Exactly `length` bytes at `start` of the object as it was probed (its ETag), or it fails. */
  protected abstract fetch(start: number, length: number): Promise<Buffer>;
  protected abstract release(): void;
  /**
   * One request for `length` bytes at `start`, pinned to the probed ETag, its answer's headers
   * checked (status, ETag, Content-Range, length); retried by the source's own rules until
   * the headers arrive. Failures are TensorSealErrors.
   */
  protected abstract body(start: number, length: number): Promise<Body>;

  /**
   * Serves what the probe holds, then one request for the rest, copied into `pieceBytes`
   * buffers as it arrives (the one copy every ranged read makes too). A body that breaks off
   * (a dropped connection, a timeout, a short answer) is resumed by a new request from the
   * first byte not yet received, pinned to the same ETag: every byte is still authenticated by
   * the consumer, and a replaced object fails the pin. `attempts` in a row without progress,
   * then E_IO. A consumer that stops early (return) destroys the request.
   */
  async *stream(
    offset: number,
    length: number,
    pieceBytes: number,
    spare: Buffer[] = [],
  ): AsyncGenerator<Buffer> {
    if (this.closed) fail("E_USAGE", `${this.name} is closed`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
      fail("E_USAGE", `range (${offset}, ${length}) must be whole numbers >= 0`);
    if (!Number.isSafeInteger(pieceBytes) || pieceBytes < 1)
      fail("E_USAGE", `pieces must be at least one byte, got ${pieceBytes}`);
    if (offset + length > this.size) fail("E_TRUNCATED", "object ended early while reading");
    const end = offset + length;
    let pos = offset;
    const alloc = (n: number) => {
      const b = spare.pop();
      return b?.length === n ? b : Buffer.allocUnsafe(n);
    };
    let piece = alloc(Math.min(pieceBytes, length));
    let filled = 0;
    const full: Buffer[] = [];
    const add = (c: Uint8Array) => {
      if (pos + c.length > end) fail("E_IO", `${this.name}: the server sent more than asked`);
      // Read by the socket straight into the piece (Body.into): already in place.
      const inPlace = c.buffer === piece.buffer && c.byteOffset === piece.byteOffset + filled;
      for (let at = 0; at < c.length; ) {
        const n = Math.min(c.length - at, piece.length - filled);
        if (!inPlace) piece.set(c.subarray(at, at + n), filled);
        filled += n;
        at += n;
        pos += n;
        if (filled === piece.length) {
          full.push(piece);
          piece = alloc(Math.min(pieceBytes, end - pos));
          filled = 0;
        }
      }
    };
    const head = this.probe.head;
    if (pos < head.length) add(head.subarray(pos, Math.min(head.length, end)));
    while (full.length > 0) yield full.shift()!;
    let stalled = 0;
    while (pos < end) {
      const from = pos;
      let body: Body | null = null;
      try {
        body = await this.body(pos, end - pos);
        body.into?.(() => piece.subarray(filled));
        yield* flowing(body, add, full);
        if (pos < end)
          throw new Error(`the answer ended after ${pos - from} of ${end - from} bytes`);
      } catch (e) {
        if (isTensorSealError(e)) throw e;
        stalled = pos === from ? stalled + 1 : 1;
        if (stalled >= this.attempts) {
          const why = e instanceof Error ? e.message : String(e);
          fail(
            "E_IO",
            `${this.name}: the download kept breaking off (${why}), still after ${stalled} attempts: try again later`,
          );
        }
        await sleep(this.backoffMs * 2 ** (stalled - 1) * (0.5 + Math.random()));
      } finally {
        body?.destroy();
      }
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (this.closed) fail("E_USAGE", `${this.name} is closed`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
      fail("E_USAGE", `range (${offset}, ${length}) must be whole numbers >= 0`);
    if (offset + length > this.size) fail("E_TRUNCATED", "object ended early while reading");
    const head = this.probe.head;
    // One request's worth past the probe: its answer is the result (no second copy).
    if (offset >= head.length && length <= this.partBytes && length > 0) {
      return this.limited(() => this.fetch(offset, length));
    }
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    if (offset < head.length)
      done = head.copy(out, 0, offset, Math.min(head.length, offset + length));
    const parts: Promise<void>[] = [];
    for (let at = done; at < length; at += this.partBytes) {
      const n = Math.min(this.partBytes, length - at);
      parts.push(this.limited(() => this.fetch(offset + at, n)).then((b) => void b.copy(out, at)));
    }
    const settled = await Promise.allSettled(parts);
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.release();
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    while (this.active >= this.concurrency) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/**
 * Reads `body` in flowing mode ('data' events: an async iterator over a 256 MiB loopback body
 * took 12-17% more wall time and 10-14% more CPU, medians of 7), handing each chunk to `add`
 * (which copies it at once: a RawResponse reuses its buffer),
 * which completes pieces into `full`; yields them, pausing the body only while PIECES_AHEAD
 * whole pieces wait for the consumer. Ends when the body ends or closes (the caller checks
 * that every byte came), throws what the body or `add` threw.
 */
async function* flowing(
  body: Body,
  add: (c: Uint8Array) => void,
  full: Buffer[],
): AsyncGenerator<Buffer> {
  let done = false;
  let error: unknown = null;
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  body.on("data", (c: Uint8Array) => {
    if (error !== null) return;
    try {
      add(c);
    } catch (e) {
      error = e;
      body.destroy();
    }
    if (full.length >= PIECES_AHEAD) body.pause();
    poke();
  });
  body.on("end", () => {
    done = true;
    poke();
  });
  body.on("close", () => {
    done = true;
    poke();
  });
  body.on("error", (e) => {
    error ??= e;
    poke();
  });
  body.resume(); // a RawResponse waits for this; a Readable already flows
  for (;;) {
    while (full.length > 0) {
      const p = full.shift()!;
      if (full.length < PIECES_AHEAD && !done && error === null) body.resume();
      yield p;
    }
    if (error !== null) throw error;
    if (done) return;
    await new Promise<void>((r) => {
      wake = r;
    });
  }
}

/** Parses `bytes START-END/TOTAL`; null when the header is missing or says something else. */
export function parseContentRange(
  v: string | undefined,
): { start: number; end: number; total: number } | null {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(v?.trim() ?? "");
  if (!m) return null;
  const [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (![start, end, total].every(Number.isSafeInteger) || end < start || end >= total) return null;
  return { start, end, total };
}

/** The check every ranged answer passes: the range asked for, of an object of the probed size. */
export function checkContentRange(
  name: string,
  header: string | undefined,
  start: number,
  length: number,
  size: number | null,
): number {
  const r = parseContentRange(header);
  if (
    !r ||
    r.start !== start ||
    r.end !== start + length - 1 ||
    (size !== null && r.total !== size)
  ) {
    fail(
      "E_IO",
      `${name}: the server answered another range than asked (Content-Range ${JSON.stringify(header ?? null)} for bytes ${start}-${start + length - 1}${size === null ? "" : `/${size}`}): the object changed, or the server mishandles ranges`,
    );
  }
  return r.total;
}

export function changedError(name: string): never {
  return fail(
    "E_IO",
    `${name}: the object changed while it was being read (its ETag no longer matches): open it again`,
  );
}
