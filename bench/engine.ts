/**
 * `npm run bench`: engine throughput against limits measured in the same run (this machine's
 * speed drifts ±25%, so only same-run ratios mean anything).
 *   - to memory: seal into /dev/null and verify (decrypt, discard) vs `openssl speed -multi N`
 *     at the chunk size (the cipher limit, on a buffer that stays in the CPU's cache), vs the
 *     same `openssl speed` on 256 MiB buffers (the cipher on data that lives in DRAM, as a
 *     2 GiB file's bytes do) and vs `cat FILE > /dev/null` (one thread copying the input out of
 *     the page cache, what every pread-based reader pays)
 *   - file to file: seal/open vs `cp`, and vs `cp` + fsync (our outputs are fsynced: the
 *     like-for-like peer), and `age -e/-d` when installed; every timed run writes a new file
 *     (the previous output is removed outside the clock: replacing a 2 GiB file costs the
 *     kernel 0.4 s or more of freeing pages, which is not the tool's work)
 *   - through pipes (stdin to stdout): the streaming path vs `cat | cat` and a Node passthrough
 *   - peak RSS of each operation (run in its own process)
 *   - against the runtime (issue 11's Node 24 goal): seal/verify to memory with default settings
 *     vs this node binary's own AES-256-GCM on two worker_threads at the chunk size
 *     (bench/runtime-ceiling.ts), next to memcpy bandwidth, in alternating rounds
 * Env: BENCH_SIZE_MIB (default 2048), BENCH_CHUNKS (default "1048576,262144,16384"),
 * BENCH_ONLY=runtime (only the runtime comparison), BENCH_RT_ROUNDS (default 5).
 * Whole processes (start-up included) against age, gpg, openssl, `cat` pipes and `cp` + fsync:
 * bench/peers.ts (`npm run bench:peers`).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const sizeMiB = Number(process.env.BENCH_SIZE_MIB ?? 2048);
const chunks = (process.env.BENCH_CHUNKS ?? "1048576,262144,16384").split(",").map(Number);
const dir = resolve(here, "../../.bench-tmp");
const bytes = sizeMiB * 1024 * 1024;
const kekHex = randomBytes(32).toString("hex");
const cores = availableParallelism();
const GB = 1e9;
const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

/** `warm`: the worker pool is started before the clock, as in a long-lived process. */
function op(kind: string, input: string, output: string, chunk: number, warm = false) {
  const args = [join(here, "op.js"), kind, input, output, kekHex, String(chunk)];
  const env = { ...process.env, BENCH_WARM: warm ? "1" : "" };
  const r = spawnSync(process.execPath, args, { encoding: "utf8", env });
  if (r.status !== 0) throw new Error(`${kind} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as { seconds: number; maxRssMiB: number };
}

function timeCmd(cmd: string, args: string[]): number {
  const t = process.hrtime.bigint();
  execFileSync(cmd, args, { stdio: ["ignore", "ignore", "inherit"] });
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/**
 * Two-core AES-256-GCM limit in GB/s, one EVP call per `chunk` bytes on a buffer of that size:
 * at a chunk size the buffer stays in cache; at 256 MiB it does not (the DRAM-bound peer).
 */
function opensslLimit(chunk: number): number {
  const args = [
    "speed",
    "-evp",
    "aes-256-gcm",
    "-multi",
    String(cores),
    "-bytes",
    String(chunk),
    "-seconds",
    "3",
  ];
  const out = execFileSync("openssl", args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  // The summed line of -multi reads like "AES-256-GCM    7742685.18k" (units of 1000 bytes).
  const line = out
    .trim()
    .split("\n")
    .filter((l) => /aes-256-gcm/i.test(l) && /\d+(\.\d+)?k\s*$/.test(l))
    .pop();
  if (!line) throw new Error(`cannot read openssl speed output:\n${out}`);
  return (Number(line.trim().split(/\s+/).pop()!.replace("k", "")) * 1000) / GB;
}

/** `cat FILE > /dev/null` (median of 3), in GB/s: reading the input out of the page cache. */
function readLimit(input: string): number {
  return bytes / median([0, 1, 2].map(() => timeCmd("cat", [input]))) / GB;
}

function writeInput(path: string): void {
  const block = randomBytes(64 << 20);
  const fd = openSync(path, "w");
  for (let done = 0; done < bytes; done += block.length) {
    writeSync(fd, block, 0, Math.min(block.length, bytes - done));
  }
  closeSync(fd);
}

function say(s: string): void {
  process.stdout.write(`${s}\n`);
}

const OUT_OF_CACHE = 256 << 20;

function toMemory(input: string): void {
  const dram = opensslLimit(OUT_OF_CACHE);
  for (const chunk of chunks) {
    const limit = opensslLimit(chunk);
    const read = readLimit(input);
    const sealed = join(dir, `sealed-${chunk}.tseal`);
    op("seal", input, sealed, chunk);
    const time = (kind: string, file: string, warm: boolean) =>
      median([0, 1, 2].map(() => op(kind, file, "", chunk, warm).seconds));
    const rates = [
      time("seal-mem", input, false),
      time("verify", sealed, false),
      time("seal-mem", input, true),
      time("verify", sealed, true),
    ].map((seconds) => bytes / seconds / GB);
    rmSync(sealed, { force: true });
    const rate = (r: number) =>
      `${r.toFixed(2)} (${x(r, limit)}; ${x(r, dram)} of DRAM; ${x(r, read)} of cat)`;
    say(
      `| ${chunk / 1024} KiB | ${limit.toFixed(2)} | ${dram.toFixed(2)} | ${read.toFixed(2)} | ${rates.map(rate).join(" | ")} |`,
    );
  }
}

type Ceiling = {
  gcmCache: number;
  gcmSliced: number;
  gcmDram: number;
  memcpy1: number;
  memcpyN: number;
};

/**
 * The engine against the runtime it runs on, at the default chunk size: each round measures
 * the runtime's limits (bench/runtime-ceiling.ts, a child of the same node binary) and then the
 * engine's seal and verify to memory (warm pool, default settings), so a loaded stretch of this
 * shared machine weighs on both sides of a round's ratio; the medians of the per-round figures
 * and ratios are printed, the ratio range in brackets.
 */
function versusRuntime(input: string): void {
  const rounds = Number(process.env.BENCH_RT_ROUNDS ?? 5);
  const chunk = chunks[0]!;
  const sealed = join(dir, "sealed-rt.tseal");
  op("seal", input, sealed, chunk);
  const ceilingJs = join(here, "runtime-ceiling.js");
  const rows = Array.from({ length: rounds }, () => {
    const out = execFileSync(process.execPath, [ceilingJs, String(chunk), "2", "2"], {
      encoding: "utf8",
    });
    const c = JSON.parse(out.trim().split("\n").pop()!) as Ceiling;
    const seal = bytes / op("seal-mem", input, "", chunk, true).seconds / GB;
    const verify = bytes / op("verify", sealed, "", chunk, true).seconds / GB;
    return { ...c, seal, verify, openssl: opensslLimit(chunk) };
  });
  rmSync(sealed, { force: true });
  type Row = (typeof rows)[number];
  const med = (f: (r: Row) => number) => median(rows.map(f));
  const ratio = (f: (r: Row) => number) => {
    const v = rows.map(f);
    return `${med(f).toFixed(2)}x (${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)})`;
  };
  const loadavg = execFileSync("cat", ["/proc/loadavg"], { encoding: "utf8" }).trim();
  say(
    `\nagainst the runtime, ${chunk / 1024} KiB chunks, Node ${process.versions.node} (OpenSSL ${process.versions.openssl}), native ${nativeState()}, load ${loadavg} (GB/s, medians of ${rounds} alternating rounds; node GCM = createCipheriv aes-256-gcm on 2 worker_threads at the chunk size, in cache / over 128 MiB buffers, a fresh output Buffer per update() as node:crypto gives; sliced = the same chunk fed to update() in 64 KiB slices, no chunk-sized output allocation, the stricter ceiling; openssl = the system's \`openssl speed -multi ${cores}\` at the chunk size, in place; goal: engine >= 0.8x of node GCM; ratios to the larger of node GCM in cache and sliced):\n`,
  );
  say(
    "| node GCM x2 (cache) | node GCM x2 (sliced) | node GCM x2 (DRAM) | openssl | memcpy x1 | memcpy x2 | seal (warm) | verify (warm) | seal / node GCM | verify / node GCM | seal / openssl | verify / openssl | seal / memcpy x2 | verify / memcpy x2 |",
  );
  say("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  const f = (g: (r: Row) => number) => med(g).toFixed(2);
  const nodeGcm = (r: Row) => Math.max(r.gcmCache, r.gcmSliced);
  say(
    `| ${f((r) => r.gcmCache)} | ${f((r) => r.gcmSliced)} | ${f((r) => r.gcmDram)} | ${f((r) => r.openssl)} | ${f((r) => r.memcpy1)} | ${f((r) => r.memcpyN)} | ${f((r) => r.seal)} | ${f((r) => r.verify)} | ${ratio((r) => r.seal / nodeGcm(r))} | ${ratio((r) => r.verify / nodeGcm(r))} | ${ratio((r) => r.seal / r.openssl)} | ${ratio((r) => r.verify / r.openssl)} | ${ratio((r) => r.seal / r.memcpyN)} | ${ratio((r) => r.verify / r.memcpyN)} |`,
  );
}

/** Whether the engine's bench processes will load the addon (they run the same dist/). */
function nativeState(): string {
  if (process.env.TENSORSEAL_NATIVE === "0") return "off";
  const probe = spawnSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { nativeGcm } from ${JSON.stringify(join(here, "../src/engine/native-gcm.js"))}; process.stdout.write(nativeGcm ? "loaded" : "NOT loaded (node:crypto path)")`,
    ],
    { encoding: "utf8" },
  );
  return probe.stdout || "unknown";
}

/** Rounds of the file-to-file comparison: this VM's page-cache and disk speed drift between runs. */
const ROUNDS = 5;

/**
 * Each round times cp, cp + fsync, seal and open back to back, each into a path that does not
 * exist yet (removed and synced outside the clock), and the ratios are taken within a round,
 * so a slow stretch of the disk or of fresh page-cache pages weighs on both sides of a ratio.
 */
function fileToFile(input: string): { open: number; seal: number } {
  const chunk = chunks[0]!;
  const copy = join(dir, "copy.bin");
  const sealed = join(dir, "sealed.tseal");
  const opened = join(dir, "opened.bin");
  const fresh = <T>(path: string, run: () => T): T => {
    rmSync(path, { force: true });
    execFileSync("sync");
    return run();
  };
  const rounds = Array.from({ length: ROUNDS }, () => {
    const cp = fresh(copy, () => timeCmd("cp", [input, copy]));
    const cpSync = fresh(copy, () =>
      timeCmd("sh", ["-c", `cp "$0" "$1" && sync "$1"`, input, copy]),
    );
    rmSync(copy, { force: true });
    const seal = fresh(sealed, () => op("seal", input, sealed, chunk));
    const open = fresh(opened, () => op("open", sealed, opened, chunk));
    rmSync(opened, { force: true });
    return { cp, cpSync, seal, open };
  });
  const med = (f: (r: (typeof rounds)[number]) => number) => median(rounds.map(f));
  const spread = (f: (r: (typeof rounds)[number]) => number) => {
    const v = rounds.map(f);
    return `${med(f).toFixed(2)}x (${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)})`;
  };
  const seal = med((r) => r.seal.seconds);
  const open = med((r) => r.open.seconds);
  say(
    `\nfile to file, ${chunk / 1024} KiB chunks (seconds, median of ${ROUNDS} rounds; outputs fsynced; ratios: median of the per-round ratios, range in brackets):\n`,
  );
  say(
    "| cp | cp + fsync | seal | open | seal / cp+fsync | open / cp+fsync | seal / cp | open / cp |",
  );
  say("| --- | --- | --- | --- | --- | --- | --- | --- |");
  say(
    `| ${med((r) => r.cp).toFixed(2)} | ${med((r) => r.cpSync).toFixed(2)} | ${seal.toFixed(2)} | ${open.toFixed(2)} | ${spread((r) => r.seal.seconds / r.cpSync)} | ${spread((r) => r.open.seconds / r.cpSync)} | ${spread((r) => r.seal.seconds / r.cp)} | ${spread((r) => r.open.seconds / r.cp)} |`,
  );
  const rss = Math.max(...rounds.flatMap((r) => [r.seal.maxRssMiB, r.open.maxRssMiB]));
  say(`\npeak RSS of seal/open: ${rss.toFixed(0)} MiB (goal <= 256 MiB)`);
  return { open, seal };
}

/**
 * Through pipes, as `cat FILE | tensorseal seal - -o - | ...` runs: the streaming path (one
 * thread, bounded memory) against `cat | cat` (the pipes themselves) and Node handing stdin to
 * stdout untouched (Node's own pipe handling, the ceiling for any Node stream). Whole pipelines
 * are timed, process start-up included (median of 3).
 */
function streams(input: string): void {
  const chunk = String(chunks[0]!);
  const opJs = join(here, "op.js");
  const node = process.execPath;
  const sealed = join(dir, "stream.tseal");
  const time = (script: string, ...args: string[]) =>
    median([0, 1, 2].map(() => timeCmd("sh", ["-c", script, ...args])));
  const rate = (seconds: number) => bytes / seconds / GB;
  const pipe = rate(time('cat "$0" | cat | cat > /dev/null', input));
  const nodePipe = rate(
    time('cat "$0" | "$1" -e "process.stdin.pipe(process.stdout)" | cat > /dev/null', input, node),
  );
  const stream = 'cat "$0" | "$1" "$2" KIND - - "$3" "$4" 2>/dev/null | cat > /dev/null';
  const seal = rate(time(stream.replace("KIND", "seal-stream"), input, node, opJs, kekHex, chunk));
  execFileSync("sh", [
    "-c",
    '"$1" "$2" seal-stream - - "$3" "$4" < "$0" > "$5" 2>/dev/null',
    input,
    node,
    opJs,
    kekHex,
    chunk,
    sealed,
  ]);
  const open = rate(time(stream.replace("KIND", "open-stream"), sealed, node, opJs, kekHex, chunk));
  rmSync(sealed, { force: true });
  say("\nthrough pipes, stdin to stdout (GB/s, whole pipeline, median of 3):\n");
  say("| cat \\| cat | node passthrough | seal stream | open stream |");
  say("| --- | --- | --- | --- |");
  say(
    `| ${pipe.toFixed(2)} | ${nodePipe.toFixed(2)} | ${seal.toFixed(2)} (${x(seal, nodePipe)}) | ${open.toFixed(2)} (${x(open, nodePipe)}) |`,
  );
}

function versusAge(input: string, ours: { open: number }): void {
  if (spawnSync("age", ["--version"]).status !== 0) {
    say("\nage not installed (apt-get install age): comparison skipped");
    return;
  }
  const id = join(dir, "age.key");
  execFileSync("age-keygen", ["-o", id], { stdio: "ignore" });
  const recipient = execFileSync("age-keygen", ["-y", id], { encoding: "utf8" }).trim();
  const aged = join(dir, "x.age");
  const ageE = timeCmd("age", ["-r", recipient, "-o", aged, input]);
  const ageD = timeCmd("age", ["-d", "-i", id, "-o", join(dir, "age.out"), aged]);
  const ageDNull = timeCmd("age", ["-d", "-i", id, "-o", "/dev/null", aged]);
  const sealed = join(dir, "sealed-age.tseal");
  op("seal", input, sealed, chunks[0]!);
  const verify = op("verify", sealed, "", chunks[0]!).seconds;
  say("\nagainst age (seconds):\n");
  say(
    "| age -e | age -d (file) | tensorseal open (file, fsynced) | age -d > /dev/null | tensorseal verify | open vs age -d |",
  );
  say("| --- | --- | --- | --- | --- | --- |");
  say(
    `| ${ageE.toFixed(2)} | ${ageD.toFixed(2)} | ${ours.open.toFixed(2)} | ${ageDNull.toFixed(2)} | ${verify.toFixed(2)} | file ${x(ageD, ours.open)}, memory ${x(ageDNull, verify)} (goal >= 2x) |`,
  );
}

function main(): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const input = join(dir, "input.bin");
  try {
    writeInput(input);
    execFileSync("cat", [input], { stdio: ["ignore", "ignore", "inherit"] }); // into page cache
    if (process.env.BENCH_ONLY === "runtime") {
      versusRuntime(input);
      return;
    }
    const native = process.env.TENSORSEAL_NATIVE === "0" ? "off" : "auto";
    const mmap = process.env.TENSORSEAL_MMAP === "0" ? "off" : "auto";
    say(
      `TensorSeal engine benchmark, ${new Date().toISOString().slice(0, 10)}: ${sizeMiB} MiB in page cache, ${cores} cores, native AES-GCM ${native}, input mmap ${mmap}\n`,
    );
    say(
      `to memory (GB/s; goal >= 0.8x of the openssl -multi ${cores} limit at the chunk size; openssl, DRAM = the same on ${OUT_OF_CACHE >> 20} MiB buffers, data out of cache as a big file's is; cat = one thread reading the input to /dev/null; cold = worker start-up inside the timing, warm = pool already running as in a long-lived process):\n`,
    );
    say(
      "| chunk | openssl limit | openssl, DRAM | cat limit | seal (cold) | open/verify (cold) | seal (warm pool) | open/verify (warm pool) |",
    );
    say("| --- | --- | --- | --- | --- | --- | --- | --- |");
    toMemory(input);
    const ours = fileToFile(input);
    streams(input);
    versusAge(input, ours);
    versusRuntime(input);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
