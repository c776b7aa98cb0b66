/**
 * A sealed file behind an HTTP(S) server that answers Range requests (a presigned S3 / GCS /
 * Azure URL, a CDN, nginx). Every answer is checked before its bytes are used: 206 with exactly
 * the Content-Range asked for (a 200 is a server that ignored the range: refused, never read
 * whole), the body exactly that long, and the object pinned: If-Match with the ETag the probe
 * saw, and the answer's own ETag compared, so a file replaced mid-read fails (412 or a
 * different ETag) instead of mixing two versions. Without an ETag, Last-Modified is pinned the
 * same way (If-Unmodified-Since). 5xx, 429, timeouts and dropped connections are retried with
 * exponential backoff (Retry-After honoured up to a cap); other answers fail at once. A
 * whole-file read is one such GET streamed (ranged.ts, stream), resumed by another from where
 * its body broke off; its body is read off the socket by http1.ts, straight into the stream's
 * pieces (node:http's fresh buffer per read cost 35-85 MiB of peak RSS: docs/BENCHMARKS.md).
 * Chunk authentication does not rely on any of this: it only turns a changed or misbehaving
 * server into a clear error rather than E_DECRYPT.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import { fail, isTensorSealError } from "../../format/errors.js";
import { NETWORK_CODES, rawGet } from "./http1.js";
import {
  type Body,
  changedError,
  checkContentRange,
  DEFAULT_CONCURRENCY,
  PROBE_BYTES,
  type Probe,
  type RangedOptions,
  RangedSource,
} from "./ranged.js";
import { redactUrl } from "./url.js";

export interface HttpSourceOptions extends RangedOptions {
  /** A socket idle this long (connect included) fails the attempt (default 30 s). */
  readonly timeoutMs?: number;
}

const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);
const MAX_RETRY_AFTER_MS = 10_000;

/** A failure worth another attempt (server busy, connection lost); anything else is final. */
class Retryable extends Error {
  constructor(
    readonly why: string,
    readonly afterMs: number | null = null,
  ) {
    super(why);
  }
}

interface Pin {
  etag: string | null;
  lastModified: string | null;
}

export async function openHttpSource(
  url: string,
  opts: HttpSourceOptions = {},
): Promise<RangedSource> {
  const u = new URL(url);
  const name = redactUrl(url);
  const agentOpts = { keepAlive: true, maxSockets: opts.concurrency ?? DEFAULT_CONCURRENCY };
  const agent = u.protocol === "https:" ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts);
  const client = new HttpClient(u, name, agent, opts);
  try {
    const probe = await client.probe();
    return new HttpSource(name, probe, client, agent, opts);
  } catch (e) {
    agent.destroy();
    throw e;
  }
}

class HttpSource extends RangedSource {
  constructor(
    name: string,
    probe: Probe,
    private readonly client: HttpClient,
    private readonly agent: HttpAgent,
    opts: RangedOptions,
  ) {
    super(name, probe, opts);
  }

  protected fetch(start: number, length: number): Promise<Buffer> {
    return this.client.range(start, length, this.size);
  }

  protected body(start: number, length: number): Promise<Body> {
    return this.client.body(start, length, this.size);
  }

  protected release(): void {
    this.agent.destroy();
  }
}

class HttpClient {
  private pin: Pin = { etag: null, lastModified: null };
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly url: URL,
    private readonly name: string,
    private readonly agent: HttpAgent,
    opts: HttpSourceOptions,
  ) {
    this.attempts = Math.max(1, opts.attempts ?? 5);
    this.backoffMs = opts.backoffMs ?? 200;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** The first PROBE_BYTES (or the whole object if smaller): size, ETag and the header. */
  async probe(): Promise<Probe> {
    const r = await this.withRetries(() => this.get(0, PROBE_BYTES, null, true));
    if (r.total === 0) fail("E_TRUNCATED", `${this.name} is empty: not a sealed file`);
    this.pin = r.pin;
    return { size: r.total, etag: r.pin.etag, head: r.body };
  }

  async range(start: number, length: number, size: number): Promise<Buffer> {
    return (await this.withRetries(() => this.get(start, length, size, false))).body;
  }

  /**
   * The answer to one ranged GET, its headers checked, its body not yet read: read off the
   * socket into one reused buffer (http1.ts), not through node:http's fresh buffer per read.
   */
  body(start: number, length: number, size: number): Promise<Body> {
    return this.withRetries(async () => {
      const opts = { timeoutMs: this.timeoutMs };
      const res = await rawGet(this.url, this.headers(start, length), opts).catch((e) => {
        throw isRetryableNetwork(e) ? new Retryable(netWhy(e)) : e;
      });
      try {
        return await this.answer(res, start, length, size, false, async (r) => r);
      } catch (e) {
        res.destroy();
        throw e;
      }
    });
  }

  private async withRetries<T>(attempt: () => Promise<T>): Promise<T> {
    for (let i = 1; ; i++) {
      try {
        return await attempt();
      } catch (e) {
        if (isTensorSealError(e)) throw e;
        if (!(e instanceof Retryable)) {
          const code = (e as NodeJS.ErrnoException)?.code ?? "unknown error";
          return fail("E_IO", `${this.name}: cannot fetch: ${code}`, e);
        }
        if (i >= this.attempts) {
          fail("E_IO", `${this.name}: ${e.why}, still after ${i} attempts: try again later`);
        }
        const backoff = this.backoffMs * 2 ** (i - 1) * (0.5 + Math.random());
        await sleep(e.afterMs ?? backoff);
      }
    }
  }

  /** One GET of `bytes=start-(start+length-1)`, every header of the answer checked. */
  private get(
    start: number,
    length: number,
    size: number | null,
    probing: boolean,
  ): Promise<{ body: Buffer; total: number; pin: Pin }> {
    return this.request(start, length, size, probing, async (res, want, total, pin) => ({
      body: await readBody(res, want, this.name),
      total,
      pin,
    }));
  }

  /** A ranged GET's request headers, pinned to what the probe saw. */
  private headers(start: number, length: number): Record<string, string> {
    const headers: Record<string, string> = {
      range: `bytes=${start}-${start + length - 1}`,
      "accept-encoding": "identity",
    };
    const strong = this.pin.etag && !this.pin.etag.startsWith("W/") ? this.pin.etag : null;
    if (strong) headers["if-match"] = strong;
    else if (this.pin.lastModified) headers["if-unmodified-since"] = this.pin.lastModified;
    return headers;
  }

  /** Sends the GET, checks the answer's headers, then hands the answer to `then`. */
  private request<T>(
    start: number,
    length: number,
    size: number | null,
    probing: boolean,
    then: (res: IncomingMessage, want: number, total: number, pin: Pin) => Promise<T>,
  ): Promise<T> {
    const headers = this.headers(start, length);
    const request = this.url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(this.url, { method: "GET", headers, agent: this.agent }, (res) => {
        this.answer(res, start, length, size, probing, then).then(resolve, (e) => {
          res.destroy();
          reject(e);
        });
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(new Retryable("no answer in time")));
      req.on("error", (e) => reject(isRetryableNetwork(e) ? new Retryable(netWhy(e)) : e));
      req.end();
    });
  }

  private async answer<R extends Answer, T>(
    res: R,
    start: number,
    length: number,
    size: number | null,
    probing: boolean,
    then: (res: R, want: number, total: number, pin: Pin) => Promise<T>,
  ): Promise<T> {
    const status = res.statusCode ?? 0;
    if (status !== 206) {
      res.resume();
      this.refuse(status, res.headers["retry-after"]);
    }
    const pin: Pin = {
      etag: header(res, "etag"),
      lastModified: header(res, "last-modified"),
    };
    if (!probing && !samePin(this.pin, pin)) changedError(this.name);
    const cr = header(res, "content-range") ?? undefined;
    // The probe may get less than asked: the object is shorter than PROBE_BYTES.
    const total = probing ? checkProbeRange(this.name, cr, length) : size!;
    const want = probing ? Math.min(length, total) : length;
    if (!probing) checkContentRange(this.name, cr, start, want, size);
    checkLength(res, want, this.name);
    return then(res, want, total, pin);
  }

  private refuse(status: number, retryAfter: string | string[] | undefined): never {
    const name = this.name;
    if (RETRY_STATUS.has(status)) throw new Retryable(`HTTP ${status}`, retryAfterMs(retryAfter));
    switch (status) {
      case 200:
        return fail(
          "E_IO",
          `${name}: the server ignored the Range request (200 instead of 206): serve it from a server that supports range requests`,
        );
      case 412:
        return changedError(name);
      case 401:
      case 403:
        return fail(
          "E_IO",
          `${name}: access denied (HTTP ${status}): check the URL's signature, expiry or permissions`,
        );
      case 404:
        return fail("E_IO", `${name}: not found (HTTP 404)`);
      case 416:
        return fail(
          "E_IO",
          `${name}: range not satisfiable (HTTP 416): the object is shorter than expected`,
        );
      default:
        return fail("E_IO", `${name}: unexpected answer HTTP ${status} to a range request`);
    }
  }
}

/** What is checked of an answer: node:http's IncomingMessage or http1.ts's RawResponse. */
interface Answer {
  readonly statusCode?: number;
  readonly headers: Record<string, string | string[] | undefined>;
  resume(): unknown;
  destroy(): unknown;
}

function header(res: Answer, name: string): string | null {
  const v = res.headers[name];
  return typeof v === "string" ? v : null;
}

/** Both pins must agree on what the probe saw (an ETag that appears or vanishes is a change). */
function samePin(a: Pin, b: Pin): boolean {
  if (a.etag !== null || b.etag !== null) return a.etag === b.etag;
  return a.lastModified === b.lastModified;
}

function checkProbeRange(name: string, cr: string | undefined, asked: number): number {
  const m = /^bytes 0-(\d+)\/(\d+)$/.exec(cr?.trim() ?? "");
  const end = Number(m?.[1]);
  const total = Number(m?.[2]);
  if (!m || !Number.isSafeInteger(total) || end !== Math.min(asked, total) - 1) {
    checkContentRange(name, cr, 0, asked, null); // fails with the message that says why
  }
  return total;
}

function checkLength(res: Answer, want: number, name: string): void {
  const declared = Number(res.headers["content-length"] ?? want);
  if (declared !== want) {
    res.resume();
    fail("E_IO", `${name}: the server sent ${declared} bytes for a range of ${want}`);
  }
}

function readBody(res: IncomingMessage, want: number, name: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out = Buffer.allocUnsafe(want);
    let got = 0;
    res.on("data", (c: Buffer) => {
      if (got + c.length > want) {
        res.destroy();
        reject(fail_("E_IO", `${name}: the server sent more than the ${want} bytes asked`));
        return;
      }
      c.copy(out, got);
      got += c.length;
    });
    res.on("end", () =>
      got === want
        ? resolve(out)
        : reject(new Retryable(`the answer ended after ${got} of ${want} bytes`)),
    );
    res.on("aborted", () => reject(new Retryable("the connection dropped mid-answer")));
    res.on("error", (e) => reject(isRetryableNetwork(e) ? new Retryable(netWhy(e)) : e));
  });
}

function fail_(code: "E_IO", message: string): Error {
  try {
    return fail(code, message);
  } catch (e) {
    return e as Error;
  }
}

function isRetryableNetwork(e: unknown): boolean {
  if (e instanceof Retryable) return true;
  if (isTensorSealError(e)) return false;
  const code = (e as NodeJS.ErrnoException)?.code;
  return (code !== undefined && NETWORK_CODES.has(code)) || /socket hang up/.test(String(e));
}

function netWhy(e: unknown): string {
  if (e instanceof Retryable) return e.why;
  return `connection failed (${(e as NodeJS.ErrnoException)?.code ?? "socket hang up"})`;
}

function retryAfterMs(v: string | string[] | undefined): number | null {
  const s = typeof v === "string" ? Number(v) : Number.NaN;
  return Number.isFinite(s) && s >= 0 ? Math.min(s * 1000, MAX_RETRY_AFTER_MS) : null;
}
