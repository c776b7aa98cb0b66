/**
 * A loopback HTTP proxy in front of another server (moto's S3) that forwards every request and
 * answer unchanged, except that it can cut answers off: the next `drops` answers whose body is
 * longer than `afterBytes` send their headers and only that many body bytes, then the
 * connection is dropped (what a flaky network does to a long GetObject).
 */
import { createServer, request } from "node:http";

export interface DroppingProxy {
  readonly base: string;
  /** Answers cut off so far, and the Range and If-Match headers and path of every request. */
  readonly seen: {
    ranges: (string | undefined)[];
    ifMatches: (string | undefined)[];
    urls: string[];
    dropped: number;
  };
  drop(drops: number, afterBytes: number): void;
  close(): Promise<void>;
}

export async function droppingProxy(target: string): Promise<DroppingProxy> {
  const to = new URL(target);
  let drops = 0;
  let afterBytes = 0;
  const seen = {
    ranges: [] as (string | undefined)[],
    ifMatches: [] as (string | undefined)[],
    urls: [] as string[],
    dropped: 0,
  };
  const srv = createServer((req, res) => {
    seen.ranges.push(req.headers.range);
    seen.ifMatches.push(req.headers["if-match"]);
    seen.urls.push(req.url ?? "");
    const up = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        const length = Number(answer.headers["content-length"] ?? 0);
        if (drops > 0 && length > afterBytes) {
          drops--;
          seen.dropped++;
          let sent = 0;
          answer.on("data", (c: Buffer) => {
            if (sent >= afterBytes) return;
            const part = c.subarray(0, afterBytes - sent);
            sent += part.length;
            res.write(part, () => {
              if (sent >= afterBytes) {
                answer.destroy();
                res.socket?.destroy();
              }
            });
          });
          return;
        }
        answer.pipe(res);
      },
    );
    up.on("error", () => res.socket?.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  return {
    base: `http://127.0.0.1:${port}`,
    seen,
    drop(n, bytes) {
      drops = n;
      afterBytes = bytes;
    },
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}
