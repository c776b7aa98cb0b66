// Quick cipher-only throughput check (not a test): node:crypto's per-chunk createCipheriv path
// (as in src/engine/batch-js.ts jsBatch) vs the native batch addon, over 1 GiB in memory with
// 1 MiB chunks and the engine's 8 MiB batches into reused buffers. One thread, then N worker
// threads each on their own share (aggregate = all bytes / wall time, first start to last end).
// "open in place" includes re-copying its 8 MiB input each batch. Usage:
// node native/bench-gcm.mjs [threads=2] [MiB=1024]
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

const gcm = createRequire(import.meta.url)("../build/Release/tseal_gcm.node");
const CS = 1 << 20;
const TAG = 16;
const PER_BATCH = 8;
const PIECE = 128 << 10;

function nonceOf(base, k) {
  const n = Buffer.from(base);
  n.writeUInt32BE((n.readUInt32BE(8) ^ k) >>> 0, 8);
  return n;
}

function jsSeal(key, base, first, count, src, dst) {
  let w = 0;
  for (let i = 0; i < count; i++) {
    const c = createCipheriv("aes-256-gcm", key, nonceOf(base, first + i));
    const r = i * CS;
    for (let q = r; q < r + CS; q += PIECE) w += c.update(src.subarray(q, q + PIECE)).copy(dst, w);
    c.final();
    w += c.getAuthTag().copy(dst, w);
  }
}

function jsOpen(key, base, first, count, src, dst) {
  let w = 0;
  for (let i = 0; i < count; i++) {
    const d = createDecipheriv("aes-256-gcm", key, nonceOf(base, first + i));
    const r = i * (CS + TAG);
    d.setAuthTag(src.subarray(r + CS, r + CS + TAG));
    for (let q = r; q < r + CS; q += PIECE) {
      const pt = d.update(src.subarray(q, q + PIECE));
      if (dst) w += pt.copy(dst, w);
    }
    d.final();
  }
}

/** Runs every variant over `bytes` of fresh data; returns GB/s per variant. */
function run(bytes, sync = null, threads = 1) {
  let phase = 0;
  const barrier = () => {
    if (!sync) return;
    phase++;
    Atomics.add(sync, 0, 1);
    while (Atomics.load(sync, 0) < phase * threads) Atomics.wait(sync, 0, Atomics.load(sync, 0), 5);
  };
  const key = randomBytes(32);
  const base = randomBytes(12);
  const chunks = bytes / CS;
  const plain = Buffer.allocUnsafeSlow(bytes).fill(0x5a);
  const sealed = Buffer.allocUnsafeSlow(bytes + chunks * TAG);
  for (let k = 0; k < chunks; k += PER_BATCH) {
    const s = plain.subarray(k * CS, (k + PER_BATCH) * CS);
    gcm.sealBatch(key, base, k, PER_BATCH, CS, s, 0, s.length, sealed, k * (CS + TAG));
  }
  const outSealed = Buffer.allocUnsafeSlow(PER_BATCH * (CS + TAG)).fill(0);
  const outPlain = Buffer.allocUnsafeSlow(PER_BATCH * CS).fill(0);
  // Each variant: [start, end] in ms since the epoch, so threads can be summed over wall time.
  const batches = (fn) => {
    barrier(); // workers start each variant together
    const t = performance.timeOrigin + performance.now();
    for (let k = 0; k < chunks; k += PER_BATCH) fn(k);
    return [t, performance.timeOrigin + performance.now()];
  };
  const pt = (k) => plain.subarray(k * CS, (k + PER_BATCH) * CS);
  const st = (k) => sealed.subarray(k * (CS + TAG), (k + PER_BATCH) * (CS + TAG));
  const n = PER_BATCH;
  return {
    "js seal": batches((k) => jsSeal(key, base, k, n, pt(k), outSealed)),
    "native seal": batches((k) =>
      gcm.sealBatch(key, base, k, n, CS, pt(k), 0, n * CS, outSealed, 0),
    ),
    "native seal in place": batches((k) => {
      // plaintext already in its slots: the cipher work only, as batch-native.ts's readv leaves it
      gcm.sealInPlace(key, base, k, n, CS, outSealed, 0, n * (CS + TAG));
    }),
    "js open": batches((k) => jsOpen(key, base, k, n, st(k), outPlain)),
    "native open": batches((k) => {
      if (gcm.openBatch(key, base, k, n, CS, st(k), 0, n * (CS + TAG), outPlain, 0) < 0) throw 0;
    }),
    "native open in place": batches((k) => {
      st(k).copy(outSealed); // openInPlace consumes its input: copy cost included
      if (gcm.openInPlace(key, base, k, n, CS, outSealed, 0, n * (CS + TAG)) < 0) throw 0;
    }),
    "js verify": batches((k) => jsOpen(key, base, k, n, st(k), null)),
    "native verify": batches((k) => {
      if (gcm.openBatch(key, base, k, n, CS, st(k), 0, n * (CS + TAG), null, 0) < 0) throw 0;
    }),
  };
}

if (!isMainThread) {
  parentPort.postMessage(run(workerData.share, workerData.sync, workerData.threads));
} else {
  const threads = Number(process.argv[2] ?? 2);
  const total = Number(process.argv[3] ?? 1024) << 20;
  const one = run(total);
  const share = total / threads;
  const sync = new Int32Array(new SharedArrayBuffer(4));
  const each = await Promise.all(
    Array.from({ length: threads }, () => {
      const w = new Worker(new URL(import.meta.url), { workerData: { share, sync, threads } });
      return new Promise((res, rej) => w.once("message", res).once("error", rej));
    }),
  );
  console.log(
    `${total >> 20} MiB, 1 MiB chunks, 8 MiB batches (GB/s; ${threads} threads: total / wall)`,
  );
  const gbps = (ms) => total / 1e9 / (ms / 1000);
  for (const name of Object.keys(one)) {
    const wall =
      Math.max(...each.map((r) => r[name][1])) - Math.min(...each.map((r) => r[name][0]));
    console.log(
      `${name.padEnd(22)} 1 thread ${gbps(one[name][1] - one[name][0]).toFixed(2)}  ${threads} threads ${gbps(wall).toFixed(2)}`,
    );
  }
}
