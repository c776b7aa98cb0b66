/**
 * The ends of a stream seal or open: a source that reads large pieces (a read of at least as
 * many bytes as complete the next chunk, so whole chunks move on as they arrive and no sooner
 * is a consumer kept waiting), and a sink that joins a batch's chunk views back into one write
 * and keeps a bounded amount of output waiting for a slow consumer.
 *
 * Reading a descriptor into one reused buffer (fs.read for files and FIFOs, libuv's onread for
 * stdin as a pipe) replaced a Readable's fresh 64 KiB pieces: 1 GiB sealed from a file to
 * /dev/null took 37,900 context switches that way (age: 650), and the pieces the GC freed late
 * added 35-45 MiB of peak RSS.
 */

import { fstatSync, read, WriteStream } from "node:fs";
import { Socket, type SocketConstructorOpts } from "node:net";
import { nativeGcm } from "./native-gcm.js";

type SocketOptions = SocketConstructorOpts & { onread: unknown };

import type { Readable, Writable } from "node:stream";

/** What a descriptor read asks for at most: whole batches of default-size (1 MiB) chunks. */
export const READ_BYTES = 1 << 20;

/**
 * Up to this much output waits for a slow consumer while the input goes on being read and
 * processed. Without it the pipeline took turns: nothing was read while a chunk drained into a
 * pipe (measured: 1 GiB sealed between two `cat`s in 2.65 s, 1.55 s with it).
 */
export const OUTPUT_AHEAD_BYTES = 4 << 20;

/**
 * What a descriptor read (a regular file, or a FIFO read with fs.read) asks for at most: room for
 * two default sealed chunks (1 MiB + 16 bytes each) and a payload prefix, so a read of whole
 * chunks (read's `step`) gives each of the two pool threads one and nothing is staged. (Reads of
 * 2 MiB left every other sealed chunk split across two reads, copied aside; 4 MiB reads were no
 * faster and cost 8-10 MiB more peak RSS.)
 */
export const FILE_READ_BYTES = (2 << 20) + (64 << 10);

/** The capacity asked for the pipes on stdin and stdout (Linux's default limit for anyone). */
export const PIPE_BYTES = 1 << 20;

export interface PullSource {
  /**
   * At least `min` bytes (fewer only at the end of the input; empty at the end). A source reads
   * into two buffers in turn: the view stays as it is through the next read and may be reused
   * by the one after (a consumer may work on one input while the next is read; it copies what
   * it keeps longer). With `step` (the consumer's unit, a sealed or plaintext chunk) a read that
   * can take more asks for `min` plus whole steps, so the input ends on a chunk boundary and the
   * consumer stages (copies aside) nothing. `map`: the consumer reads the bytes only through
   * the addon's batch calls (which survive a file shrinking under a mapping), so a source may
   * hand out a mapping of the file (stream-file.ts); others ignore it.
   */
  read(min: number, step?: number, map?: boolean): Promise<Buffer>;
  /** Releases what the source holds (a Readable is destroyed, a descriptor is left open). */
  close(): void;
}

type Piece = Buffer | string;
const asBuffer = (p: Piece) => (typeof p === "string" ? Buffer.from(p) : p);

/** The input as a source: a descriptor (the caller closes it) or any Readable. */
export function pullSource(input: Readable | number): PullSource {
  if (typeof input !== "number") return new ReadableSource(input);
  // stdin as a pipe or socket: read in the event loop, straight into the buffer. Only fd 0: a
  // socket closes its descriptor, and fd 0 is no one else's to close.
  if (input === 0 && isPipe(0)) {
    widenPipe(0);
    return new PipeSource(0);
  }
  return new FdSource(input);
}

/**
 * Asks for a larger pipe (F_SETPIPE_SZ through the addon, when built): through 64 KiB pipes the
 * processes of a pipeline switch every 64 KiB (a 256 MiB seal between two `cat`s: ~10,000
 * context switches). Best effort: a refusal leaves the pipe as it was.
 */
export function widenPipe(fd: number): void {
  try {
    nativeGcm?.setPipeSize?.(fd, PIPE_BYTES);
  } catch {
    // not ours to fail on
  }
}

function isPipe(fd: number): boolean {
  const st = fstatSync(fd);
  return st.isFIFO() || st.isSocket();
}

/**
 * What one request of a pipe may ask for: a default sealed chunk (1 MiB + 16 bytes) and a
 * payload prefix or what is left of a header, so a whole chunk arrives as one piece.
 */
const PIPE_REQUEST_BYTES = (2 << 20) + (64 << 10);

/**
 * A pipe read by libuv as data arrives (up to 32 reads per event-loop turn, no thread-pool
 * round trip per read), each read straight into the request's buffer and no further than the
 * request asks (net.Socket's `onread` with a buffer function: no buffer allocated per read and
 * no copy; a request that ends on a chunk boundary gets exactly that, so nothing is staged).
 * Reading pauses once a request is met; the next read lands at the start of the other buffer,
 * which the next request fills. (Reads into one landing buffer copied every byte once more, and
 * the overshoot past a chunk boundary was copied aside again by the sealer or opener.)
 */
class PipeSource implements PullSource {
  /** Two, in turn: the consumer may still use the last one handed out while the next fills. */
  private readonly bufs = [
    Buffer.allocUnsafeSlow(PIPE_REQUEST_BYTES),
    Buffer.allocUnsafeSlow(PIPE_REQUEST_BYTES),
  ];
  /** As if bufs[1] had been handed out: the first request fills bufs[0], where reads start. */
  private buf = this.bufs[1]!;
  private readonly socket: Socket;
  private filled = 0;
  private want = 0;
  /** The bytes before `filled` were handed out: the next request starts the other buffer. */
  private handedOut = true;
  private ended = false;
  private error: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(fd: number) {
    const onread = {
      buffer: () => this.landing(),
      callback: (n: number, into: Buffer) => {
        if (
          into.buffer !== this.buf.buffer ||
          into.byteOffset !== this.buf.byteOffset + this.filled
        ) {
          // Never expected (a read lands only where landing() said); fail rather than misplace.
          this.error ??= new Error("stdin: a read landed outside the request");
          this.wake?.();
          return false;
        }
        this.filled += n;
        if (this.filled < this.want) return true;
        this.wake?.();
        return false; // paused until the next read()
      },
    };
    // `onread` is a documented Socket option that @types/node leaves out of the constructor's.
    this.socket = new Socket({ fd, readable: true, writable: false, onread } as SocketOptions);
    this.socket.on("end", () => {
      this.ended = true;
      this.wake?.();
    });
    this.socket.on("error", (e) => {
      this.error ??= e;
      this.wake?.();
    });
  }

  /** Where libuv's next read lands: Node asks after every read, and once at the start. */
  private landing(): Buffer {
    if (!this.handedOut && this.filled < this.want) {
      return this.buf.subarray(this.filled, this.want);
    }
    // Met (about to be handed out) or not started: the next request starts the other buffer.
    // Its size is not known yet; a default chunk's worth (a request may get more than it asks).
    return this.other().subarray(0, READ_BYTES);
  }

  private other(): Buffer<ArrayBuffer> {
    return this.buf === this.bufs[0] ? this.bufs[1]! : this.bufs[0]!;
  }

  async read(min: number): Promise<Buffer> {
    if (this.handedOut) {
      this.buf = this.other();
      this.filled = 0;
      this.handedOut = false;
    }
    this.want = Math.max(1, Math.min(min, PIPE_REQUEST_BYTES));
    while (this.filled < this.want && !this.ended && !this.error) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.socket.resume();
      });
      this.wake = null;
    }
    if (this.error) throw this.error;
    this.handedOut = true;
    return this.buf.subarray(0, this.filled);
  }

  close(): void {
    for (const b of this.bufs) b.fill(0); // a sealing run's plaintext
    this.socket.destroy();
  }
}

class ReadableSource implements PullSource {
  private readonly pieces: AsyncIterator<Piece>;
  private ended = false;

  constructor(private readonly stream: Readable) {
    this.pieces = stream[Symbol.asyncIterator]();
  }

  async read(min: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let length = 0;
    while (length < Math.max(1, min) && !this.ended) {
      const r = await this.pieces.next();
      if (r.done) this.ended = true;
      else {
        const b = asBuffer(r.value);
        parts.push(b);
        length += b.length;
      }
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
  }

  /** The iterator already saw any error of the stream's own: destroy it without one. */
  close(): void {
    if (!this.stream.destroyed) this.stream.destroy();
  }
}

/**
 * Blocking reads on the thread pool, as large as the buffer. A descriptor in non-blocking mode
 * (a pipe some other code opened as a stream, or a parent's socket) answers EAGAIN: from then on
 * it is read as a socket, which waits for data in the event loop.
 */
class FdSource implements PullSource {
  private readonly bufs = [
    Buffer.allocUnsafeSlow(FILE_READ_BYTES),
    Buffer.allocUnsafeSlow(FILE_READ_BYTES),
  ];
  private buf = this.bufs[1]!;
  private socket: ReadableSource | null = null;
  /** What a socket piece held beyond the buffer's room, for the next read. */
  private spare: Buffer | null = null;

  constructor(private readonly fd: number) {}

  async read(min: number, step?: number): Promise<Buffer> {
    this.buf = this.buf === this.bufs[0] ? this.bufs[1]! : this.bufs[0]!;
    const want = Math.max(1, Math.min(min, this.buf.length));
    const ask = askFor(want, step, this.buf.length);
    let filled = 0;
    while (filled < want) {
      const n = await this.readOnce(filled, ask);
      if (n === 0) break;
      filled += n;
    }
    return this.buf.subarray(0, filled);
  }

  close(): void {
    for (const b of this.bufs) b.fill(0); // a sealing run's plaintext
    this.socket?.close();
  }

  /** One read into the buffer at `at`, up to `end`. */
  private async readOnce(at: number, end: number): Promise<number> {
    if (!this.socket) {
      try {
        return await readFd(this.fd, this.buf, at, end - at);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
        this.socket = new ReadableSource(
          new Socket({ fd: this.fd, readable: true, writable: false }),
        );
      }
    }
    const piece = this.spare ?? (await this.socket.read(1));
    const n = piece.copy(this.buf, at, 0, Math.min(piece.length, end - at));
    this.spare = n < piece.length ? piece.subarray(n) : null;
    return n;
  }
}

/**
 * How much a read that needs `want` bytes asks for: `want` plus as many whole `step`s as fit in
 * `room` (without a step, all of it), so the input ends where a chunk ends.
 */
export function askFor(want: number, step: number | undefined, room: number): number {
  if (!step || step <= 0) return room;
  return want + Math.floor((room - want) / step) * step;
}

function readFd(fd: number, buf: Buffer, at: number, length: number): Promise<number> {
  return new Promise((resolve, reject) =>
    read(fd, buf, at, length, null, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

/**
 * Output buffers used again once their write completed, instead of a fresh allocation per read
 * that the garbage collector frees late (1 GiB sealed peaked 35 MiB higher that way). Only for
 * Node's own writers, whose callback means the bytes are gone (a Writable of someone else's may
 * keep a chunk after its callback); plaintext in them is wiped at the end.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private readonly mine = new WeakSet<ArrayBufferLike>();
  private readonly all: Buffer[] = [];

  /** A buffer of `length` bytes (a view of a pooled one when one is free and large enough). */
  take(length: number): Buffer {
    const i = this.free.findIndex((b) => b.length >= length);
    if (i >= 0) return this.free.splice(i, 1)[0]!.subarray(0, length);
    // Room for what one read can complete: its own bytes and a staged partial chunk (1 MiB).
    const b = Buffer.allocUnsafeSlow(Math.max(length, 2 * READ_BYTES + 4096));
    this.mine.add(b.buffer);
    this.all.push(b);
    return b.subarray(0, length);
  }

  /** A view from take() whose write completed. */
  give(view: Buffer): void {
    if (!this.mine.has(view.buffer)) return;
    const whole = this.all.find((b) => b.buffer === view.buffer);
    if (whole && !this.free.includes(whole)) this.free.push(whole);
  }

  wipe(): void {
    for (const b of this.all) b.fill(0);
  }
}

/** Writers whose write callback means the bytes were handed on (their buffers can be reused). */
export function isNodeWriter(out: Writable): boolean {
  return out instanceof WriteStream || out === process.stdout || out === process.stderr;
}

/**
 * The output: whole batches per write. A Node writer (stdout, a file) gets up to
 * OUTPUT_AHEAD_BYTES waiting while the input goes on being read and processed; any other
 * Writable only its own high-water mark (what it queues stays that plus one write).
 */
export class PushSink {
  private pending = 0;
  private error: unknown = null;
  private wake: (() => void) | null = null;
  private readonly limit: number;
  private readonly onError = (e: Error) => {
    this.error ??= e;
    this.wake?.();
  };

  constructor(
    private readonly out: Writable,
    private readonly pool: BufferPool | null,
  ) {
    this.limit = Math.max(out.writableHighWaterMark, pool ? OUTPUT_AHEAD_BYTES : 0);
    out.on("error", this.onError);
    if (out === process.stdout && isPipe(1)) widenPipe(1);
  }

  async write(parts: readonly Buffer[]): Promise<void> {
    this.check();
    for (const p of joinViews(parts)) {
      this.pending += p.length;
      this.out.write(p, (e) => {
        this.pending -= p.length;
        if (!e) this.pool?.give(p);
        this.wake?.();
      });
    }
    while (this.pending > this.limit && !this.error) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = null;
    }
    this.check();
  }

  /** Ends the output and waits until it has taken everything. */
  async end(): Promise<void> {
    this.check();
    await new Promise<void>((resolve, reject) => {
      this.out.end((e?: Error | null) => (e ? reject(e) : resolve()));
    });
    this.check();
    this.pool?.wipe();
  }

  /** A failed run: the output is destroyed with the error, as stream.pipeline does. */
  fail(error: Error): void {
    if (!this.out.destroyed) this.out.destroy(error);
    this.pool?.wipe();
  }

  private check(): void {
    if (this.error) throw this.error;
  }
}

/** Adjacent views of one buffer (a batch handed on a chunk at a time) as one view. */
function joinViews(parts: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const p of parts) {
    const last = out.at(-1);
    if (last && last.buffer === p.buffer && last.byteOffset + last.length === p.byteOffset) {
      out[out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + p.length);
    } else out.push(p);
  }
  return out;
}
