/**
 * One HTTP/1.1 GET read straight off a net/tls socket into one reused buffer (`onread`), for
 * the streamed whole-file read only (http-source.ts; S3's presigned GET, s3-stream.ts).
 * node:http hands every socket read over in a fresh 64 KiB buffer, and those wait for the
 * garbage collector: a streamed remote open peaked at 108-171 MiB of RSS with them
 * (docs/BENCHMARKS.md). Ranged reads and the probe keep node:http (S3's: the SDK).
 *
 * Deliberately small and strict: a status line, header fields (no folding, no CR/LF or NUL in
 * values, at most HEAD_MAX bytes and FIELDS_MAX fields), then a body delimited by
 * Content-Length or chunked transfer coding, or by the connection's close when neither is
 * given (the caller counts the bytes). Conflicting or malformed Content-Length, both framings
 * at once, another transfer coding, a bad chunk size or chunk terminator, and bytes past the
 * body's end are refused (E_IO), never guessed at. One request per connection (Connection:
 * close). TLS verifies the server exactly as node:https does by default: the runtime's CA store
 * (NODE_EXTRA_CA_CERTS included), the URL's host name as SNI and as the name checked.
 */
import { EventEmitter } from "node:events";
import { isIP, connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { fail } from "../../format/errors.js";

/** Bytes one socket read may deliver into the reused buffer. */
export const RAW_READ_BYTES = 512 << 10;
/** The status line and header fields together, at most (node:http's default is 16 KiB). */
export const HEAD_MAX = 16 << 10;
const FIELDS_MAX = 100;
/** A chunk-size line (size and extensions) or one trailer field, at most. */
const LINE_MAX = 4 << 10;
const SINGLE = new Set([
  "content-length",
  "content-range",
  "etag",
  "last-modified",
  "transfer-encoding",
  "retry-after",
]);
/** Connection failures a whole-file read retries (node:http's, ours, and undici's for fetch). */
export const NETWORK_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const CRLF = Buffer.from("\r\n");
const EMPTY = Buffer.alloc(0);

/**
 * An answer's status and header fields (names in lower case, repeated ones joined with ", "),
 * and its body as events: 'data' (a view valid only during the call: copy what you keep),
 * then 'end' if the body was complete, 'error' if it failed, 'close' always. The body starts
 * paused: nothing is emitted before the first resume() (the consumer's listeners are on).
 */
export class RawResponse extends EventEmitter {
  statusCode = 0;
  headers: Record<string, string> = {};
  /** What followed the head in its read, until the consumer resumes (a copy: reads reuse). */
  held: Buffer | null = null;
  started = false;
  /** The connection closed before the consumer resumed: told at resume(). */
  closedEarly = false;
  private paused = true;
  private finished = false;
  private feed: ((b: Buffer) => boolean) | null = null;
  /** Where the consumer wants the next body bytes (see into()). */
  target: (() => Uint8Array) | null = null;

  constructor(private readonly socket: Socket) {
    super();
  }

  /** The reader's parser, fed what was held once the consumer resumes. */
  attach(feed: (b: Buffer) => boolean): void {
    this.feed = feed;
  }

  /**
   * Body bytes of a Content-Length (or until-close) answer are read by the socket straight
   * into `target()` (the consumer's own buffer, called before each read), not into this
   * reader's buffer: the 'data' view is then that memory, and the consumer copies nothing.
   */
  into(target: () => Uint8Array): void {
    this.target = target;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.started = true;
    if (this.closedEarly) {
      process.nextTick(() => this.emit("close"));
      return;
    }
    const held = this.held ?? EMPTY;
    this.held = null;
    if (!this.feed!(held)) return;
    if (!this.paused && !this.socket.destroyed) this.socket.resume();
  }

  destroy(e?: Error): void {
    this.socket.destroy(e);
  }

  /** For the reader: false asks the socket to stop reading until resume(). */
  get reading(): boolean {
    return !this.paused;
  }

  /** For the reader: the body is complete. */
  complete(): void {
    if (this.finished) return;
    this.finished = true;
    this.emit("end");
    this.socket.destroy();
  }

  get done(): boolean {
    return this.finished;
  }

  /** An 'error' nobody listens for yet (before the consumer's listeners) is not thrown. */
  fault(e: Error): void {
    if (!this.finished && this.listenerCount("error") > 0) this.emit("error", e);
  }
}

export interface RawGetOptions {
  readonly timeoutMs: number;
}

/**
 * Sends `GET url` with `headers` on a new connection; resolves with the answer once its
 * header fields arrived, its body still to come. Network failures reject with the socket's
 * error (its `code`), a malformed answer with E_IO.
 */
export function rawGet(
  url: URL,
  headers: Record<string, string>,
  opts: RawGetOptions,
): Promise<RawResponse> {
  const https = url.protocol === "https:";
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = Number(url.port || (https ? 443 : 80));
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
  for (const [k, v] of Object.entries({ ...headers, connection: "close" })) {
    if (!TOKEN.test(k) || /[\r\n\0]/.test(v)) fail("E_USAGE", `invalid request header ${k}`);
    lines.push(`${k}: ${v}`);
  }
  const request = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
  const scratch = Buffer.allocUnsafe(RAW_READ_BYTES);
  let parser: Parser | null = null;
  let res: RawResponse | null = null;
  const onread = {
    // Called before every read: the consumer's memory once the body is plain bytes.
    buffer: () => {
      const room = parser?.direct ?? 0;
      const t = room > 0 && res?.started ? res.target?.() : undefined;
      return t && t.length > 0 ? t.subarray(0, Math.min(t.length, room)) : scratch;
    },
    callback: (n: number, b: Uint8Array) =>
      parser?.feed(Buffer.from(b.buffer, b.byteOffset, n)) ?? true,
  };
  return new Promise((resolve, reject) => {
    // The options node:https gives tls.connect by default (CA store, SNI, name check).
    const socket: Socket = https
      ? tlsConnect({ host, port, servername: isIP(host) ? undefined : host, onread } as never)
      : netConnect({ host, port, onread } as never);
    const answer = new RawResponse(socket);
    res = answer;
    let settled = false;
    const settle = (e: Error | null) => {
      if (settled) return;
      settled = true;
      if (e) reject(e);
      else resolve(answer);
    };
    parser = new Parser(answer, (e) => {
      if (e) socket.destroy();
      settle(e);
    });
    answer.attach((b) => parser!.feed(b));
    socket.setTimeout(opts.timeoutMs, () =>
      socket.destroy(Object.assign(new Error("no answer in time"), { code: "ETIMEDOUT" })),
    );
    socket.once(https ? "secureConnect" : "connect", () => socket.write(request));
    socket.on("error", (e) => (settled ? answer.fault(e) : settle(e)));
    socket.on("end", () => socket.destroy());
    socket.on("close", () => {
      if (!settled) {
        settle(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
        return;
      }
      if (!answer.started) {
        answer.closedEarly = true;
        return;
      }
      // Without a length the body ends with the connection: the caller counts its bytes.
      if (parser!.untilClose && !socket.errored) answer.complete();
      answer.emit("close");
    });
  });
}

type State = "head" | "length" | "close" | "size" | "data" | "data-crlf" | "trailer" | "done";

/** Feeds socket reads through the answer's framing; `headed` is called once, with any error. */
class Parser {
  private state: State = "head";
  private head: Buffer[] = [];
  private headBytes = 0;
  private remaining = 0;
  private line = "";

  constructor(
    private readonly res: RawResponse,
    private readonly headed: (e: Error | null) => void,
  ) {}

  get untilClose(): boolean {
    return this.state === "close";
  }

  /** Body bytes the next read may put straight into the consumer's memory (0: none). */
  get direct(): number {
    if (this.state === "length") return this.remaining;
    return this.state === "close" ? Number.MAX_SAFE_INTEGER : 0;
  }

  /** One socket read; returns whether to go on reading. */
  feed(b: Buffer): boolean {
    const wasHead = this.state === "head";
    try {
      let at = 0;
      while (at < b.length) {
        if (!this.res.started && this.state !== "head") {
          // The head ended inside this read: keep the rest for the consumer's resume().
          this.res.held = Buffer.from(b.subarray(at));
          break;
        }
        at = this.step(b, at);
      }
    } catch (e) {
      if (wasHead && this.state === "head") this.headed(e as Error);
      else this.res.destroy(e as Error);
      this.state = "done";
      return false;
    }
    if (this.state === "done" && this.res.started) {
      this.res.complete();
      return false;
    }
    // Until the head is whole there is no consumer to wait for.
    return this.state === "head" || this.res.reading;
  }

  private step(b: Buffer, at: number): number {
    switch (this.state) {
      case "head":
        return this.readHead(b, at);
      case "length": {
        if (b.length - at > this.remaining) malformed("more bytes than its Content-Length");
        return this.emitData(b, at, "done");
      }
      case "close":
        this.res.emit("data", b.subarray(at));
        return b.length;
      case "data":
        return this.emitData(b, at, "data-crlf");
      case "size":
      case "data-crlf":
      case "trailer":
        return this.readLine(b, at);
      case "done":
        return malformed("bytes after the end of the answer");
    }
  }

  private emitData(b: Buffer, at: number, next: State): number {
    const n = Math.min(this.remaining, b.length - at);
    this.remaining -= n;
    if (this.remaining === 0) this.state = next;
    this.res.emit("data", b.subarray(at, at + n));
    return at + n;
  }

  private readHead(b: Buffer, at: number): number {
    this.head.push(Buffer.from(b.subarray(at))); // a copy: `b` is reused by the next read
    this.headBytes += b.length - at;
    const all = this.head.length === 1 ? this.head[0]! : Buffer.concat(this.head);
    const end = all.indexOf("\r\n\r\n");
    if (end < 0 ? this.headBytes > HEAD_MAX : end + 4 > HEAD_MAX) {
      malformed(`header fields over ${HEAD_MAX} bytes`);
    }
    if (end < 0) return b.length;
    this.head = [];
    this.headBytes = 0;
    this.parseHead(all.toString("latin1", 0, end));
    // Whatever followed the head in this read is the body's (or the next head's) start.
    return b.length - (all.length - (end + 4));
  }

  /** The status line and fields; an interim (1xx) answer is skipped (the real one follows). */
  private parseHead(text: string): void {
    const lines = text.split("\r\n");
    const m = /^HTTP\/1\.[01] ([1-5]\d\d)(?: [^\r\n\0]*)?$/.exec(lines[0] ?? "");
    if (!m) malformed("a malformed status line");
    const status = Number(m[1]);
    if (lines.length - 1 > FIELDS_MAX) malformed(`more than ${FIELDS_MAX} header fields`);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      // No obs-fold, no space before the colon, no CR, LF or NUL anywhere in a field.
      if (colon <= 0 || !TOKEN.test(name) || /[\0\r\n]/.test(value)) {
        malformed("a malformed header field");
      }
      const prev = headers[name];
      if (prev === undefined) headers[name] = value;
      else if (!SINGLE.has(name)) headers[name] = `${prev}, ${value}`;
      else if (prev !== value) malformed(`conflicting ${name} fields`);
    }
    if (status < 200) {
      if (status === 101) malformed("an unrequested protocol switch");
      return;
    }
    this.res.statusCode = status;
    this.res.headers = headers;
    this.frame(headers);
    this.headed(null);
  }

  private frame(headers: Record<string, string>): void {
    const te = headers["transfer-encoding"];
    const cl = headers["content-length"];
    if (te !== undefined) {
      if (cl !== undefined) malformed("both Content-Length and Transfer-Encoding");
      if (te.toLowerCase() !== "chunked") malformed(`unsupported Transfer-Encoding ${te}`);
      this.state = "size";
    } else if (cl !== undefined) {
      if (!/^\d{1,15}$/.test(cl)) malformed("a malformed Content-Length");
      this.remaining = Number(cl);
      this.state = this.remaining === 0 ? "done" : "length";
    } else {
      this.state = "close";
    }
  }

  /** One CRLF-terminated line of the chunked framing, possibly split across reads. */
  private readLine(b: Buffer, at: number): number {
    // A CR that ended the previous read, its LF starting this one.
    if (this.line.endsWith("\r") && b[at] === 0x0a) {
      const line = this.line.slice(0, -1);
      this.line = "";
      this.onLine(line);
      return at + 1;
    }
    const nl = b.indexOf(CRLF, at);
    this.line += b.toString("latin1", at, nl < 0 ? b.length : nl);
    if (this.line.length > LINE_MAX) malformed("a chunk-size or trailer line over 4 KiB");
    if (nl < 0) return b.length;
    const line = this.line;
    this.line = "";
    this.onLine(line);
    return nl + 2;
  }

  private onLine(line: string): void {
    if (/[\r\n\0]/.test(line)) malformed("a stray CR, LF or NUL in the chunked framing");
    switch (this.state) {
      case "size": {
        const m = /^([0-9A-Fa-f]{1,12})(;[^\0]*)?$/.exec(line);
        if (!m) malformed("a malformed chunk size");
        this.remaining = Number.parseInt(m[1]!, 16);
        this.state = this.remaining === 0 ? "trailer" : "data";
        return;
      }
      case "data-crlf":
        if (line !== "") malformed("a chunk longer than its size");
        this.state = "size";
        return;
      case "trailer":
        if (line === "") this.state = "done";
        else if (line.indexOf(":") <= 0) malformed("a malformed trailer field");
        return;
    }
  }
}

function malformed(why: string): never {
  return fail("E_IO", `the server's answer is malformed HTTP/1.1: ${why}`);
}
