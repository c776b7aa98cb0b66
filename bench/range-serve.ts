/**
 * The loopback server for `bench:objstore`, in its own process (so serving does not share a
 * thread with the loader being timed): files from a directory, with Range support (206) or
 * whole (200), strong ETags, and a byte counter the parent reads and resets over IPC.
 */
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";

const dir = process.argv[2]!;
let served = 0;
const server = createServer((req, res) => {
  const path = join(dir, new URL(req.url ?? "/", "http://x").pathname.replace(/^\/+/, ""));
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return void res.writeHead(404).end();
  const etag = `"${st.size}-${st.mtimeMs}"`;
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
  const start = m ? Number(m[1]) : 0;
  const end = m ? Math.min(Number(m[2]), st.size - 1) : st.size - 1;
  const headers: Record<string, string> = { etag, "content-length": String(end - start + 1) };
  if (m) headers["content-range"] = `bytes ${start}-${end}/${st.size}`;
  res.writeHead(m ? 206 : 200, headers);
  served += end - start + 1;
  createReadStream(path, { start, end, highWaterMark: 1 << 20 }).pipe(res);
});
server.listen(0, "127.0.0.1", () => {
  process.send!({ port: (server.address() as { port: number }).port });
});
process.on("message", (m: string) => {
  if (m === "count") process.send!({ served });
  if (m === "reset") served = 0;
  if (m === "stop") server.close(() => process.exit(0));
});
