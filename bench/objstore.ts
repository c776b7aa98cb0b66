/**
 * `npm run bench:objstore` (issue 14 §2): sealed models read over HTTP Range requests from a
 * loopback server in its own process (bench/range-serve.ts), against the plaintext model from
 * the same server in the same run, alternating:
 *   - full load: loadSealedSafetensors(url) (one streamed GET cut into 8 MiB batches, four
 *     read ahead, authenticated on pool threads in order, decrypted in place, then the tensor
 *     views) vs downloading the plaintext into memory (one GET, and ranged 8 MiB parts eight at
 *     a time) and parsing its safetensors header. Goal >= 0.8x of the faster plaintext
 *     download. The sealed load through ranged 8 MiB batches into a stream (the path before
 *     streaming: `ranges: true`, and what a source without `stream` gets) is shown alongside. Wiping the
 *     plaintext after use is outside every timed region.
 *   - one tensor through openSealedSafetensors(url): bytes the server sent vs the tensor's
 *     size. Goal <= its bytes + 2 chunks + the header.
 * Env: BENCH_MODEL_MIB (default 512), BENCH_RUNS (default 3).
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { get } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { closeWorkers, openSource, sealFile } from "../src/engine/index.js";
import { TAG_SIZE } from "../src/format/chunked.js";
import { openObjectSource, PROBE_BYTES } from "../src/integrations/objstore/index.js";
import {
  loadSealedSafetensors,
  openSealedSafetensors,
  parseHeader,
  readHeaderLength,
} from "../src/integrations/safetensors/index.js";
import { kekIdentity, kekRecipient } from "../src/keys/kek.js";

const here = dirname(fileURLToPath(import.meta.url));
const MiB = 1 << 20;
const CHUNK = 1 << 20;
const TENSOR_MIB = 8;
const MODEL_MIB = Number(process.env.BENCH_MODEL_MIB ?? 512);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const say = (s: string) => process.stdout.write(`${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
/** This process's CPU seconds (user + system, every thread: the pool's decryption included). */
const cpuSince = (c0: NodeJS.CpuUsage) => {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
};
const load = () => loadavg()[0]!.toFixed(1);
const range = (xs: number[], d = 2) =>
  `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)})`;

function writeModel(path: string): string[] {
  const n = Math.max(1, Math.floor(MODEL_MIB / TENSOR_MIB));
  const header: Record<string, unknown> = {};
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `layers.${i}.weight`;
    names.push(name);
    const at = i * TENSOR_MIB * MiB;
    header[name] = {
      dtype: "F32",
      shape: [(TENSOR_MIB * MiB) / 4],
      data_offsets: [at, at + TENSOR_MIB * MiB],
    };
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const fd = openSync(path, "w");
  writeSync(fd, Buffer.concat([len, Buffer.from(json)]));
  const block = randomBytes(TENSOR_MIB * MiB);
  for (let i = 0; i < n; i++) writeSync(fd, block);
  closeSync(fd);
  return names;
}

/** What the plaintext peer does after downloading: parse the header, view the tensors. */
function parsePlain(buf: Buffer): number {
  const n = readHeaderLength(buf.subarray(0, 8), buf.length);
  return parseHeader(buf.subarray(8, 8 + n), buf.length - 8 - n).tensors.size;
}

function downloadWhole(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const out = Buffer.allocUnsafe(Number(res.headers["content-length"]));
      let at = 0;
      res.on("data", (c: Buffer) => {
        at += c.copy(out, at);
      });
      res.on("end", () => resolve(out));
      res.on("error", reject);
    }).on("error", reject);
  });
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "tseal-bench-objstore-"));
  let server: ChildProcess | null = null;
  try {
    const names = writeModel(join(dir, "model.safetensors"));
    const kek = randomBytes(32);
    const recipient = kekRecipient({ name: "bench", version: 1 }, kek);
    const identities = [kekIdentity("kek:bench", (r) => (r.name === "bench" ? kek : null))];
    await sealFile(join(dir, "model.safetensors"), join(dir, "model.safetensors.tseal"), {
      recipients: [recipient],
      chunkSize: CHUNK,
    });
    server = fork(join(here, "range-serve.js"), [dir], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const srv = server;
    const ask = <T>(m: string, key: string) =>
      new Promise<T>((r) => {
        const on = (msg: Record<string, T>) => {
          if (key in msg) {
            srv.off("message", on);
            r(msg[key]!);
          }
        };
        srv.on("message", on);
        srv.send(m);
      });
    const port = await new Promise<number>((r) =>
      srv.once("message", (m: { port: number }) => r(m.port)),
    );
    const base = `http://127.0.0.1:${port}`;
    const plainUrl = `${base}/model.safetensors`;
    const sealedUrl = `${base}/model.safetensors.tseal`;
    say(
      `model: ${MODEL_MIB} MiB safetensors, ${names.length} tensors of ${TENSOR_MIB} MiB, chunk 1 MiB; ${RUNS} runs, alternating; medians`,
    );

    const t = {
      whole: [] as number[],
      ranged: [] as number[],
      sealed: [] as number[],
      sealedRanged: [] as number[],
    };
    const cpu = { whole: [] as number[], sealed: [] as number[] };
    const loadBefore = load();
    for (let run = 0; run < RUNS; run++) {
      let t0 = process.hrtime.bigint();
      let c0 = process.cpuUsage();
      parsePlain(await downloadWhole(plainUrl));
      t.whole.push(seconds(t0));
      cpu.whole.push(cpuSince(c0));

      t0 = process.hrtime.bigint();
      const p = await openObjectSource(plainUrl);
      parsePlain(await p.read(0, p.size));
      await p.close();
      t.ranged.push(seconds(t0));

      t0 = process.hrtime.bigint();
      c0 = process.cpuUsage();
      const loaded = await loadSealedSafetensors(sealedUrl, identities);
      t.sealed.push(seconds(t0));
      cpu.sealed.push(cpuSince(c0));
      if (loaded.arrays.size !== names.length) throw new Error("not every tensor loaded");
      new Uint8Array(loaded.buffer).fill(0); // after use, as a caller wipes: not the load's time

      t0 = process.hrtime.bigint();
      const src = await openObjectSource(sealedUrl);
      const out = Buffer.allocUnsafe(src.size);
      let at = 0;
      const sink = new Writable({
        write(c: Buffer, _e, cb) {
          at += c.copy(out, at);
          cb();
        },
      });
      await openSource(src, sink, { identities, ranges: true });
      await src.close();
      parsePlain(out.subarray(0, at));
      t.sealedRanged.push(seconds(t0));
      out.fill(0);
    }
    const size = MODEL_MIB * MiB;
    const gbps = (s: number) => (size / s / 1e9).toFixed(2);
    const best = Math.min(median(t.whole), median(t.ranged));
    say(
      `plaintext, one GET:          ${median(t.whole).toFixed(3)} s  (${gbps(median(t.whole))} GB/s)`,
    );
    say(
      `plaintext, ranged parts:     ${median(t.ranged).toFixed(3)} s  (${gbps(median(t.ranged))} GB/s)`,
    );
    say(
      `sealed, one streamed GET + authenticated: ${median(t.sealed).toFixed(3)} s  (${gbps(median(t.sealed))} GB/s)`,
    );
    say(
      `sealed, ranged batches + authenticated:   ${median(t.sealedRanged).toFixed(3)} s  (${gbps(median(t.sealedRanged))} GB/s)`,
    );
    const pairs = t.whole.map((w, i) => w / t.sealed[i]!);
    say(
      `per pair (one GET / sealed load, same round): ${range(pairs)}x over ${pairs.length} pairs; load average ${loadBefore} -> ${load()}`,
    );
    say(
      `client CPU s (this process, all threads): one GET ${range(cpu.whole, 3)}, sealed load ${range(cpu.sealed, 3)}`,
    );
    say(
      `sealed load vs plaintext download: ${(best / median(t.sealed)).toFixed(2)}x of the faster (goal >= 0.8x), ${(median(t.whole) / median(t.sealed)).toFixed(2)}x of one GET; ranged batches ${(best / median(t.sealedRanged)).toFixed(2)}x`,
    );

    srv.send("reset");
    const st = await openSealedSafetensors(sealedUrl, identities);
    const atOpen = await ask<number>("count", "served");
    const name = names[Math.floor(names.length / 2)]!;
    const bytes = (await st.getTensorBytes(name)).length;
    const total = await ask<number>("count", "served");
    await st.close();
    const bound = bytes + 2 * (CHUNK + TAG_SIZE) + PROBE_BYTES + (CHUNK + TAG_SIZE);
    say(
      `one tensor (${bytes} bytes): ${total} bytes fetched (open: ${atOpen}: the 64 KiB header range and the final chunk); bound tensor + 2 chunks + header = ${bound}: ${total <= bound ? "ok" : "OVER"}`,
    );
  } finally {
    server?.send("stop");
    await closeWorkers();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
