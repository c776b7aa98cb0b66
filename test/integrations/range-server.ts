/**
 * A loopback HTTP server with Range support for the object-storage tests: it serves in-memory
 * objects with strong ETags, honours If-Match (412), counts the body bytes it sends, and can be
 * told to misbehave (ignore ranges, answer a wrong Content-Range, fail with 503 a few times,
 * replace an object after some requests, drop the connection mid-body).
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { TLSSocket } from "node:tls";

export interface RangeServer {
  readonly base: string;
  /** Body bytes sent since the last reset. */
  bytesServed: number;
  requests: {
    path: string;
    range: string | undefined;
    ifMatch: string | undefined;
    /** The SNI name the client sent (TLS only). */
    servername?: string | false | null;
  }[];
  put(path: string, data: Buffer): void;
  /** Misbehaviours, cleared by reset(). */
  mode: {
    ignoreRange?: boolean;
    wrongRange?: boolean;
    fail503?: number;
    /** This many requests get no answer at all (a stalled server). */
    stall?: number;
    /** After this many requests, the object at `path` is replaced with `data`. */
    replaceAfter?: { requests: number; path: string; data: Buffer };
    /**
     * The next `times` answers longer than `bytes` send their full headers, then only `bytes`
     * of the body, and the connection is dropped.
     */
    dropAfter?: { bytes: number; times: number };
    /** Every answer that reaches this offset of the object is cut there (connection dropped). */
    cutAt?: number;
    /**
     * Answers to ranges that do not start at 0 (past the probe) are these raw bytes on the
     * socket instead, given the body they should carry; the connection is then closed.
     */
    raw?: (body: Buffer, contentRange: string, etag: string) => Buffer;
  };
  reset(): void;
  close(): Promise<void>;
}

const etagOf = (b: Buffer) => `"${createHash("sha256").update(b).digest("hex").slice(0, 32)}"`;

export interface RangeServerOptions {
  /** Serve HTTPS with this key and certificate. */
  readonly tls?: { key: string; cert: string };
  /** The loopback address to listen on (default 127.0.0.1). */
  readonly host?: string;
}

export async function rangeServer(opts: RangeServerOptions = {}): Promise<RangeServer> {
  const objects = new Map<string, { data: Buffer; etag: string }>();
  let count = 0;
  const state: RangeServer = {
    base: "",
    bytesServed: 0,
    requests: [],
    mode: {},
    put: (path, data) => objects.set(path, { data, etag: etagOf(data) }),
    reset() {
      state.bytesServed = 0;
      state.requests = [];
      state.mode = {};
      count = 0;
    },
    close: async () => {},
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const range = req.headers.range;
    const ifMatch = req.headers["if-match"];
    const servername = opts.tls ? (req.socket as TLSSocket).servername : undefined;
    state.requests.push({ path, range, ifMatch, ...(opts.tls ? { servername } : {}) });
    count++;
    const r = state.mode.replaceAfter;
    if (r && count > r.requests) state.put(r.path, r.data);
    if ((state.mode.stall ?? 0) > 0) {
      state.mode.stall!--;
      return;
    }
    if ((state.mode.fail503 ?? 0) > 0) {
      state.mode.fail503!--;
      res.writeHead(503, { "retry-after": "0" });
      res.end();
      return;
    }
    const obj = objects.get(path);
    if (!obj) {
      res.writeHead(404);
      res.end();
      return;
    }
    const send = (status: number, headers: Record<string, string>, body: Buffer, start = 0) => {
      res.writeHead(status, { etag: obj.etag, "content-length": String(body.length), ...headers });
      const drop = state.mode.dropAfter;
      const cut = state.mode.cutAt;
      let keep = body.length;
      if (drop && drop.times > 0 && body.length > drop.bytes) {
        drop.times--;
        keep = drop.bytes;
      }
      if (cut !== undefined && start + body.length > cut) keep = Math.min(keep, cut - start);
      state.bytesServed += keep;
      if (keep === body.length) return void res.end(body);
      res.write(body.subarray(0, keep), () => res.socket?.destroy());
    };
    if (ifMatch && ifMatch !== obj.etag) {
      res.writeHead(412);
      res.end();
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? "");
    if (!m || state.mode.ignoreRange) return send(200, {}, obj.data);
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), obj.data.length - 1);
    if (start >= obj.data.length) {
      res.writeHead(416, { "content-range": `bytes */${obj.data.length}` });
      res.end();
      return;
    }
    const shown = state.mode.wrongRange ? `bytes ${start + 1}-${end + 1}` : `bytes ${start}-${end}`;
    if (state.mode.raw && start > 0) {
      const body = obj.data.subarray(start, end + 1);
      res.socket?.end(state.mode.raw(body, `${shown}/${obj.data.length}`, obj.etag));
      return;
    }
    send(
      206,
      { "content-range": `${shown}/${obj.data.length}` },
      obj.data.subarray(start, end + 1),
      start,
    );
  };
  const srv: Server = opts.tls ? createTlsServer(opts.tls, handler) : createServer(handler);
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((r) => srv.listen(0, host, r));
  const port = (srv.address() as { port: number }).port;
  return Object.assign(state, {
    base: `${opts.tls ? "https" : "http"}://${host}:${port}`,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  });
}
