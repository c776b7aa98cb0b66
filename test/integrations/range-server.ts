/**
 * A loopback HTTP server with Range support for the object-storage tests: it serves in-memory
 * objects with strong ETags, honours If-Match (412), counts the body bytes it sends, and can be
 * told to misbehave (ignore ranges, answer a wrong Content-Range, fail with 503 a few times,
 * replace an object after some requests, drop the connection mid-body).
 */
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";

export interface RangeServer {
  readonly base: string;
  /** Body bytes sent since the last reset. */
  bytesServed: number;
  requests: { path: string; range: string | undefined; ifMatch: string | undefined }[];
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
  };
  reset(): void;
  close(): Promise<void>;
}

const etagOf = (b: Buffer) => `"${createHash("sha256").update(b).digest("hex").slice(0, 32)}"`;

export async function rangeServer(): Promise<RangeServer> {
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
  const srv: Server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const range = req.headers.range;
    const ifMatch = req.headers["if-match"];
    state.requests.push({ path, range, ifMatch });
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
    send(
      206,
      { "content-range": `${shown}/${obj.data.length}` },
      obj.data.subarray(start, end + 1),
      start,
    );
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  return Object.assign(state, {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  });
}
