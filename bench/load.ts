/**
 * `npm run bench:load` (issue #5 §5): loading a sealed safetensors model into typed arrays,
 * against loading the plaintext model, in the same run with both files in the page cache.
 *   - full load: sealed (loadSealedSafetensors: one parallel decryption into one buffer, tensor views;
 *     and openSealedSafetensors + getTensor for every tensor) vs
 *     plain (read the file, parse the header, typed-array views: what safetensors.load_file
 *     does) and, when .venv has it, Python's safetensors.numpy.load_file. Goal <= 1.5x.
 *   - peak RSS of each loader in its own process (process.resourceUsage().maxRSS) against the
 *     model size. Goal <= 1.1x.
 *   - one tensor from the sealed file: plaintext bytes decrypted vs the tensor's size. Goal:
 *     at most the tensor plus two chunks (the final chunk, decrypted at open to authenticate
 *     the length, is reported apart).
 * Env: BENCH_MODEL_MIB (default 1024), BENCH_RUNS (default 3).
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { closeWorkers, sealFile } from "../src/engine/index.js";
import {
  loadSealedSafetensors,
  openSealedSafetensors,
  parseHeader,
  readHeaderLength,
  type TensorArray,
} from "../src/integrations/safetensors/index.js";
import { kekIdentity, kekRecipient } from "../src/keys/kek.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const MiB = 1 << 20;
const CHUNK = 1 << 20;
const TENSOR_MIB = 32;

function say(s: string): void {
  process.stdout.write(`${s}\n`);
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

// ---- children: one load each, in a fresh process so its peak RSS is its own ----

type Loaded = Map<string, TensorArray>;

/** The plaintext peer: one read of the file, header parse, typed-array views (no copy). */
function plainLoad(path: string): Loaded {
  const file = readFileSync(path);
  const n = readHeaderLength(file.subarray(0, 8), file.length);
  const header = parseHeader(file.subarray(8, 8 + n), file.length - 8 - n);
  const out: Loaded = new Map();
  for (const [name, t] of header.tensors) {
    const at = file.byteOffset + header.dataStart + t.dataOffsets[0];
    if (t.dtype !== "F32" || at % 4 !== 0) throw new Error("the bench model is aligned float32");
    out.set(name, new Float32Array(file.buffer, at, t.byteLength / 4));
  }
  return out;
}

function identities(kekHex: string) {
  const kek = Buffer.from(kekHex, "hex");
  return [kekIdentity("bench", (r) => (r.name === "bench" ? kek : null))];
}

async function sealedLazy(path: string, kekHex: string): Promise<Loaded> {
  const f = await openSealedSafetensors(path, identities(kekHex));
  try {
    const out: Loaded = new Map();
    for (const name of Object.keys(f.tensors)) out.set(name, await f.getTensor(name));
    return out;
  } finally {
    await f.close();
  }
}

async function sealedAll(path: string, kekHex: string): Promise<Loaded> {
  return (await loadSealedSafetensors(path, identities(kekHex))).arrays;
}

async function oneTensor(path: string, kekHex: string, name: string) {
  const f = await openSealedSafetensors(path, identities(kekHex));
  try {
    const atOpen = f.stats.bytes; // final chunk (length) + header chunks
    const t = await f.getTensor(name);
    return { tensorBytes: t.byteLength, decrypted: f.stats.bytes - atOpen, atOpen };
  } finally {
    await f.close();
  }
}

async function child(kind: string, path: string, kekHex: string, name: string): Promise<void> {
  const t0 = process.hrtime.bigint();
  let result: Record<string, number> = {};
  if (kind === "one") {
    result = await oneTensor(path, kekHex, name);
  } else if (kind !== "noop") {
    const loaded =
      kind === "plain"
        ? plainLoad(path)
        : kind === "sealed-lazy"
          ? await sealedLazy(path, kekHex)
          : await sealedAll(path, kekHex);
    let bytes = 0;
    for (const a of loaded.values()) bytes += a.byteLength;
    result = { bytes };
  }
  const s = seconds(t0);
  await closeWorkers();
  say(JSON.stringify({ seconds: s, rss: process.resourceUsage().maxRSS * 1024, ...result }));
}

// ---- the parent: model, seal, runs ----

interface Run {
  seconds: number;
  rss: number;
  bytes?: number;
  tensorBytes?: number;
  decrypted?: number;
  atOpen?: number;
}

function runChild(args: string[], cmd = process.execPath): Run {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${args.slice(0, 2).join(" ")} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Run;
}

const node = (kind: string, path: string, kekHex: string, name = "") =>
  runChild([fileURLToPath(import.meta.url), "child", kind, path, kekHex, name]);

const PY_PEER = `
import json, sys, time
t0 = time.perf_counter()
from safetensors.numpy import load_file
out = load_file(sys.argv[1])
dt = time.perf_counter() - t0
rss = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        rss = int(line.split()[1]) * 1024
print(json.dumps({"seconds": dt, "rss": rss, "bytes": sum(a.nbytes for a in out.values())}))
`;

function python(): string | null {
  const py = join(root, ".venv/bin/python");
  if (!existsSync(py)) return null;
  const r = spawnSync(py, ["-c", "import safetensors.numpy"], { stdio: "ignore" });
  return r.status === 0 ? py : null;
}

/** A safetensors file of float32 tensors (32 MiB each, plus a small one), header 8-aligned. */
function writeModel(
  path: string,
  sizeMiB: number,
): { names: string[]; bytes: number; dataBytes: number } {
  const count = Math.max(1, Math.floor(sizeMiB / TENSOR_MIB));
  const per = TENSOR_MIB * MiB;
  const entries: Record<string, unknown> = { __metadata__: { format: "pt" } };
  const names: string[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const name = `model.layers.${i}.weight`;
    entries[name] = { dtype: "F32", shape: [per / 4 / 1024, 1024], data_offsets: [at, at + per] };
    names.push(name);
    at += per;
  }
  entries["model.norm.bias"] = { dtype: "F32", shape: [4096], data_offsets: [at, at + 16384] };
  names.push("model.norm.bias");
  at += 16384;
  let json = JSON.stringify(entries);
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8);
  const head = Buffer.alloc(8 + json.length);
  head.writeBigUInt64LE(BigInt(json.length), 0);
  head.write(json, 8, "utf8");
  const fd = openSync(path, "w");
  writeSync(fd, head);
  const block = randomBytes(per);
  for (let i = 0; i < count; i++) {
    block.writeUInt32LE(i, 0); // tensors differ
    writeSync(fd, block);
  }
  writeSync(fd, randomBytes(16384));
  closeSync(fd);
  return { names, bytes: head.length + at, dataBytes: at };
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.env.BENCH_MODEL_MIB ?? 1024);
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const dir = resolve(root, ".bench-tmp-load");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const kek = randomBytes(32);
  const kekHex = kek.toString("hex");
  try {
    const plain = join(dir, "model.safetensors");
    const sealed = join(dir, "model.tseal");
    const model = writeModel(plain, sizeMiB);
    const t0 = process.hrtime.bigint();
    await sealFile(plain, sealed, {
      recipients: [kekRecipient({ name: "bench", version: 1 }, kek)],
      chunkSize: CHUNK,
    });
    const sealS = seconds(t0);
    await closeWorkers();
    for (const p of [plain, sealed]) spawnSync("cat", [p], { stdio: "ignore" }); // page cache

    const py = python();
    const kinds: [string, () => Run][] = [
      ["plain", () => node("plain", plain, kekHex)],
      ["sealed-all", () => node("sealed-all", sealed, kekHex)],
      ["sealed-lazy", () => node("sealed-lazy", sealed, kekHex)],
    ];
    if (py) kinds.push(["python", () => runChild(["-c", PY_PEER, plain], py)]);
    const results = new Map<string, Run[]>(kinds.map(([k]) => [k, []]));
    for (let i = 0; i < runs; i++) {
      for (const [k, f] of kinds) {
        const r = f();
        if (r.bytes !== model.dataBytes) throw new Error(`${k} loaded ${r.bytes} bytes`);
        results.get(k)!.push(r);
      }
    }
    const base = node("noop", plain, kekHex);
    const one = node("one", sealed, kekHex, model.names[Math.floor(model.names.length / 2)]!);

    const t = (k: string) => median(results.get(k)!.map((r) => r.seconds));
    const rss = (k: string) => Math.max(...results.get(k)!.map((r) => r.rss));
    const fileMiB = model.bytes / MiB;
    const rate = (s: number) => `${(model.bytes / s / 2 ** 30).toFixed(2)} GiB/s`;
    const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
    say(
      `TensorSeal load benchmark, ${new Date().toISOString().slice(0, 10)}: ${cpu}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, node ${process.version}, native AES-GCM ${process.env.TENSORSEAL_NATIVE === "0" ? "off" : "auto"}`,
    );
    say(
      `model: ${fileMiB.toFixed(0)} MiB safetensors, ${model.names.length} float32 tensors (${TENSOR_MIB} MiB each), 1 MiB chunks; sealed in ${sealS.toFixed(2)} s; both files in page cache; median of ${runs}\n`,
    );
    say(
      "| loader | seconds | rate | vs plain (TS) | peak RSS MiB | RSS / model | RSS - node baseline / model |",
    );
    say("| --- | --- | --- | --- | --- | --- | --- |");
    const labels: Record<string, string> = {
      plain: "plain TS (read + parse + views)",
      "sealed-all": "sealed TS loadSealedSafetensors",
      "sealed-lazy": "sealed TS getTensor x all",
      python: "python safetensors.numpy.load_file",
    };
    for (const [k] of kinds) {
      const s = t(k);
      const r = rss(k);
      const net = k === "python" ? "-" : ((r - base.rss) / model.bytes).toFixed(2);
      say(
        `| ${labels[k]} | ${s.toFixed(3)} | ${rate(s)} | ${(s / t("plain")).toFixed(2)}x | ${(r / MiB).toFixed(0)} | ${(r / model.bytes).toFixed(2)}x | ${net} |`,
      );
    }
    if (py)
      say(
        `\nsealed TS loadSealedSafetensors vs python safetensors: ${(t("sealed-all") / t("python")).toFixed(2)}x`,
      );
    say(`node baseline RSS (imports, no load): ${(base.rss / MiB).toFixed(0)} MiB`);
    say(
      `\none tensor (${((one.tensorBytes ?? 0) / MiB).toFixed(0)} MiB) from the sealed file: ${((one.decrypted ?? 0) / MiB).toFixed(2)} MiB decrypted (${((one.decrypted ?? 0) / (one.tensorBytes ?? 1)).toFixed(3)}x; goal <= tensor + 2 chunks = ${(((one.tensorBytes ?? 0) + 2 * CHUNK) / MiB).toFixed(0)} MiB); at open: ${((one.atOpen ?? 0) / MiB).toFixed(2)} MiB (final chunk + header)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "child") {
  const [, , , kind, path, kekHex, name] = process.argv;
  await child(kind!, path!, kekHex!, name ?? "");
} else {
  await main();
}
