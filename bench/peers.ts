/**
 * `npm run bench:peers`: whole processes (start-up included) against peers, the table of issue
 * 11. Each path runs TensorSeal and its peers in alternation (TensorSeal, peer, peer, TensorSeal,
 * ...), BENCH_RUNS times (default 5, at least 5 for a recorded figure); medians and min–max, and
 * each peer's ratio to TensorSeal in the same run (peer time / TensorSeal time: above 1x
 * TensorSeal is faster). Peak RSS of the whole command (GNU time -v's maximum resident set: the
 * largest process of a pipeline).
 *   - seal / open to /dev/null through stdout, vs age and the AWS Encryption SDK for JavaScript
 *     (and gpg, openssl enc for seal)
 *   - through pipes (`cat F | ... | cat > /dev/null`), vs age and the ESDK in the same pipe and
 *     `cat | cat | cat`, with the floor under each tensorseal runtime's pipe figure on this
 *     machine's cores (bench/pipe-floor.ts)
 *   - file to file with fsync (tensorseal fsyncs its output), vs `cp` + `sync FILE`, age + sync
 *     and the AWS Encryption SDK (which fsyncs its output)
 * Installs nothing: `bash scripts/setup-bench-peers.sh` installs age, gnupg, openssl and GNU
 * time from Debian and the AWS Encryption SDK from npm (bench/esdk, its own lockfile); a peer
 * that is missing is skipped with a note.
 * Env: BENCH_SIZE_MIB (default 1024), BENCH_RUNS (default 5), BENCH_BASELINE_CLI (another
 * build's dist/cli/tensorseal.cjs or main.js, e.g. the branch point's: timed as one more contender of every
 * tensorseal row, so before and after come from the same run), BENCH_ONLY (run only the paths
 * whose title contains it, e.g. "file -> file"; several separated by commas, e.g.
 * "/dev/null,pipes" for the stream rows), BENCH_NODE2 (a second node binary, e.g. Node 24's,
 * with BENCH_NODE2_ROOT: a package root whose node_modules and build/ were built for it): this
 * build's dist runs on it as one more contender of every tensorseal row, labelled by runtime,
 * so both runtimes' ratios to the same peers come from one run.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cipherSeconds, pipeFloorLines } from "./pipe-floor.js";

const here = dirname(fileURLToPath(import.meta.url));
const sizeMiB = Number(process.env.BENCH_SIZE_MIB ?? 1024);
const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? 5));
const dir = resolve(here, "../../.bench-tmp/peers");
/** What users run: package.json's bin (one-command bundles with their V8 code cache). */
const cli = `${q(process.execPath)} ${q(resolve(here, "../cli/tensorseal.cjs"))}`;
const GNU_TIME = "/usr/bin/time";
const baselineMain = process.env.BENCH_BASELINE_CLI;
const only = (process.env.BENCH_ONLY ?? "").split(",");
const baseCli = baselineMain ? `${q(process.execPath)} ${q(resolve(baselineMain))}` : null;
const node2 = process.env.BENCH_NODE2;
const node2Root = process.env.BENCH_NODE2_ROOT;
const runtime = (node: string) =>
  execFileSync(node, ["-p", "'node ' + process.versions.node"], { encoding: "utf8" }).trim();

/**
 * This build's dist in a package root for the second runtime: a copy (the bundle finds the
 * addon relative to its own real path, so a symlinked dist would load this runtime's build/),
 * beside links to that runtime's node_modules and build/.
 */
function secondRuntimeCli(): string | null {
  if (!node2) return null;
  if (!node2Root) throw new Error("BENCH_NODE2 needs BENCH_NODE2_ROOT (its node_modules, build/)");
  const root = join(dir, "node2");
  mkdirSync(root, { recursive: true });
  cpSync(resolve(here, "../../package.json"), join(root, "package.json"));
  cpSync(resolve(here, ".."), join(root, "dist"), { recursive: true });
  for (const d of ["node_modules", "build"]) symlinkSync(resolve(node2Root, d), join(root, d));
  // The copied code caches belong to this runtime's build of other files: made again by node2.
  mkdirSync(join(root, "scripts"), { recursive: true });
  cpSync(
    resolve(here, "../../scripts/build-code-cache.mjs"),
    join(root, "scripts/build-code-cache.mjs"),
  );
  execFileSync(node2, [join(root, "scripts/build-code-cache.mjs")], { stdio: "inherit" });
  return `${q(node2)} ${q(join(root, "dist/cli/tensorseal.cjs"))}`;
}

function q(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

function has(tool: string): boolean {
  return spawnSync("bash", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status === 0;
}

const hasGnuTime = spawnSync(GNU_TIME, ["--version"], { stdio: "ignore" }).status === 0;

interface Sample {
  seconds: number;
  rssMiB: number | null;
  /** CPU seconds (user + sys) of the whole command: steadier than wall time on a busy machine. */
  cpu: number | null;
}

/** One whole command under bash (pipefail), wall clock around it; `prep` runs off the clock. */
function measure(cmd: string, prep?: string): Sample {
  if (prep) execFileSync("bash", ["-c", prep], { stdio: "inherit" });
  const rssFile = join(dir, "rss.txt");
  const argv = hasGnuTime
    ? [GNU_TIME, "-f", "%M %U %S", "-o", rssFile, "bash", "-o", "pipefail", "-c", cmd]
    : ["bash", "-o", "pipefail", "-c", cmd];
  const t = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`failed (${r.status}): ${cmd}\n${r.stderr}`);
  const [rss, user, sys] = hasGnuTime
    ? readFileSync(rssFile, "utf8").trim().split("\n").at(-1)!.split(" ").map(Number)
    : [];
  return {
    seconds,
    rssMiB: rss === undefined ? null : rss / 1024,
    cpu: user === undefined || sys === undefined ? null : user + sys,
  };
}

interface Contender {
  name: string;
  cmd: string;
  /** Off the clock before each run (removing the previous output). */
  prep?: string;
}

interface Row {
  path: string;
  results: { name: string; samples: Sample[] }[];
  /** The first `subjects` results are tensorseal builds or runtimes; each peer is set against each. */
  subjects: number;
  /** The 1-minute load average before and after the row's runs. */
  load: [number, number];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (s: number) => s.toFixed(2);

function runPath(path: string, contenders: Contender[]): Row {
  const results = contenders.map((c) => ({ name: c.name, samples: [] as Sample[] }));
  const before = loadavg()[0]!;
  for (let i = 0; i < runs; i++) {
    contenders.forEach((c, k) => {
      results[k]!.samples.push(measure(c.cmd, c.prep));
    });
  }
  const subjects = contenders.filter((c) => c.name.startsWith("tensorseal")).length;
  const row: Row = { path, results, subjects, load: [before, loadavg()[0]!] };
  printRow(row);
  return row;
}

function summary(samples: Sample[]) {
  const secs = samples.map((s) => s.seconds);
  const rss = samples.map((s) => s.rssMiB).filter((x): x is number => x !== null);
  const cpu = samples.map((s) => s.cpu).filter((x): x is number => x !== null);
  return {
    cpu: cpu.length ? median(cpu) : null,
    median: median(secs),
    min: Math.min(...secs),
    max: Math.max(...secs),
    rss: rss.length ? Math.max(...rss) : null,
  };
}

function printRow(row: Row): void {
  const subjects = row.results.slice(0, row.subjects).map((r) => summary(r.samples).median);
  console.log(`\n${row.path}  (load average ${row.load.map((l) => l.toFixed(2)).join(" -> ")})`);
  for (const [k, r] of row.results.entries()) {
    const s = summary(r.samples);
    const rss = s.rss === null ? "RSS n/a" : `peak ${s.rss.toFixed(0)} MiB`;
    const cpu = s.cpu === null ? "" : `  cpu ${fmt(s.cpu)} s`;
    // A peer's ratio to each tensorseal subject; a later subject's to the first.
    const against = k < row.subjects ? subjects.slice(0, k === 0 ? 0 : 1) : subjects;
    const ratio = against.length
      ? `  ratio ${against.map((t) => `${fmt(s.median / t)}x`).join(" / ")}`
      : "";
    console.log(
      `  ${r.name.padEnd(34)} ${fmt(s.median)} s (${fmt(s.min)}–${fmt(s.max)})${cpu}  ${rss}${ratio}`,
    );
  }
}

function markdown(rows: Row[]): string {
  const lines = [
    "| path | tensorseal s (min–max), CPU s, peak RSS | peer s (min–max), CPU s, peak RSS | peer / tensorseal |",
    "| --- | --- | --- | --- |",
  ];
  const cell = (name: string, s: ReturnType<typeof summary>) =>
    `${name}: ${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)}), ${s.cpu === null ? "n/a" : fmt(s.cpu)}, ${s.rss === null ? "n/a" : `${s.rss.toFixed(0)} MiB`}`;
  for (const row of rows) {
    for (const t of row.results.slice(0, row.subjects)) {
      const ts = summary(t.samples);
      for (const r of row.results.slice(row.subjects)) {
        const s = summary(r.samples);
        const cells = [
          row.path,
          cell(t.name, ts),
          cell(r.name, s),
          `${fmt(s.median / ts.median)}x`,
        ];
        lines.push(`| ${cells.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`);
      }
    }
  }
  return lines.join("\n");
}

function makeInput(path: string): void {
  const fd = openSync(path, "w");
  const block = 8 << 20;
  for (let left = sizeMiB << 20; left > 0; left -= block) {
    writeSync(fd, randomBytes(Math.min(block, left)));
  }
  closeSync(fd);
}

const ESDK = "AWS Encryption SDK JS (1 MiB frames)";
const CAT_PIPE = "cat | cat | cat";

/**
 * The AWS Encryption SDK for JavaScript (bench/esdk/esdk.mjs: raw AES-256 keyring, 1 MiB
 * frames, committing suite without a signature; it fsyncs a file output itself), with a fresh
 * wrapping key and the input encrypted once for the decrypt rows; null when
 * scripts/setup-bench-peers.sh has not installed it.
 */
function esdkPeer(keyFile: string, input: string, sealed: string) {
  const script = resolve(here, "../../bench/esdk/esdk.mjs");
  if (!existsSync(resolve(here, "../../bench/esdk/node_modules/@aws-crypto/client-node"))) {
    return null;
  }
  writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  const run = (mode: string) => `${q(process.execPath)} ${q(script)} ${mode} ${q(keyFile)}`;
  execFileSync("bash", ["-c", `${run("encrypt")} ${q(input)} ${q(sealed)}`]);
  return { encrypt: run("encrypt"), decrypt: run("decrypt"), sealed };
}

function main(): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const home = join(dir, "home");
  process.env.TENSORSEAL_HOME = home;
  const input = join(dir, "input.bin");
  makeInput(input);
  const id = join(dir, "id.txt");
  const keygen = execFileSync("bash", ["-c", `${cli} keygen -o ${q(id)} 2>&1`], {
    encoding: "utf8",
  });
  const recipient = /tseal1[0-9a-z]+/.exec(keygen)?.[0];
  if (!recipient) throw new Error(`no recipient in keygen output: ${keygen}`);
  const sealed = join(dir, "input.tseal");
  execFileSync("bash", ["-c", `${cli} seal ${q(input)} -r ${recipient} -o ${q(sealed)}`]);
  const out = join(dir, "out");
  const rmOut = `rm -f ${q(out)}`;
  const commands = (c: string) => ({
    seal: `${c} seal ${q(input)} -r ${recipient}`,
    open: `${c} open ${q(sealed)} -i ${q(id)}`,
    sealPipe: `${c} seal - -r ${recipient} -o -`,
    openPipe: `${c} open - -i ${q(id)} -o -`,
  });
  const ts = commands(cli);
  const tb = commands(baseCli ?? cli);
  const cli2 = secondRuntimeCli();
  const t2 = commands(cli2 ?? cli);
  const label = (node: string) => ` (${runtime(node)})`;
  const rt1 = cli2 ? label(process.execPath) : "";
  const rt2 = node2 ? label(node2) : "";
  /**
   * The same command with the baseline build (BENCH_BASELINE_CLI) and on the second runtime
   * (BENCH_NODE2), as more contenders.
   */
  const base = (name: string, cmd: (t: typeof ts) => string, prep?: string): Contender[] => [
    ...(baseCli ? [{ name: `${name} (baseline)`, cmd: cmd(tb), ...(prep && { prep }) }] : []),
    ...(cli2 ? [{ name: `${name}${rt2}`, cmd: cmd(t2), ...(prep && { prep }) }] : []),
  ];

  const notes: string[] = [];
  const age = has("age") && has("age-keygen");
  let ageSeal = "";
  let ageOpen = "";
  let ageSealed = "";
  if (age) {
    const key = join(dir, "age.key");
    execFileSync("age-keygen", ["-o", key], { stdio: "ignore" });
    const pub = execFileSync("age-keygen", ["-y", key], { encoding: "utf8" }).trim();
    ageSeal = `age -r ${pub}`;
    ageOpen = `age -d -i ${q(key)}`;
    ageSealed = join(dir, "input.age");
    execFileSync("bash", ["-c", `${ageSeal} -o ${q(ageSealed)} ${q(input)}`]);
  } else notes.push("age not installed: no age rows (bash scripts/setup-bench-peers.sh)");
  const gpg = has("gpg");
  const gpgHome = join(dir, "gnupg");
  if (gpg) {
    mkdirSync(gpgHome, { mode: 0o700 });
    execFileSync("gpg", [
      "--homedir",
      gpgHome,
      "--batch",
      "--passphrase",
      "",
      "--quick-gen-key",
      "bench@tensorseal.invalid",
      "future-default",
      "default",
      "never",
    ]);
  } else notes.push("gpg not installed: no gpg row");
  const openssl = has("openssl");
  if (!openssl) notes.push("openssl not installed: no openssl row");
  const esdk = esdkPeer(join(dir, "esdk.key"), input, join(dir, "input.esdk"));
  if (!esdk)
    notes.push(
      "AWS Encryption SDK not installed: no ESDK rows (bash scripts/setup-bench-peers.sh)",
    );
  if (!hasGnuTime) notes.push("GNU time not installed (/usr/bin/time): no peak RSS");

  const peer = (ok: boolean, c: Contender) => (ok ? [c] : []);
  const rows: Row[] = [];
  const addPath = (path: string, contenders: Contender[]) => {
    if (!only.some((o) => path.includes(o))) return;
    const row = runPath(path, contenders);
    rows.push(row);
    if (path.includes("through pipes")) for (const l of pipeFloor(row)) console.log(l);
  };
  // Each runtime's cipher CPU for the input (pipe-floor.ts), measured once, when first needed.
  const cipherCache = new Map<string, number>();
  const cipherOf = (node: string, script: string) => {
    if (!cipherCache.has(node)) cipherCache.set(node, cipherSeconds(node, script, sizeMiB));
    return cipherCache.get(node)!;
  };
  const pipeFloor = (row: Row) => {
    const cat = row.results.find((r) => r.name === CAT_PIPE);
    if (!cat) return [];
    const subjects = row.results.slice(0, row.subjects).map((r) => ({
      ...r,
      cipherSeconds:
        node2 && rt2 && r.name.endsWith(rt2)
          ? cipherOf(node2, join(dir, "node2/dist/bench/cipher-cpu.js"))
          : cipherOf(process.execPath, join(here, "cipher-cpu.js")),
    }));
    return pipeFloorLines(cat.samples, subjects);
  };
  console.log(
    `bench:peers: ${sizeMiB} MiB random input, ${runs} alternating runs per path; seconds are whole processes (start-up included)`,
  );
  // The floor under every tensorseal figure: node and the CLI's modules, no work.
  for (const [c, rt] of cli2 ? [[cli, rt1] as const, [cli2, rt2] as const] : [[cli, ""] as const]) {
    const startup = summary(Array.from({ length: runs }, () => measure(`${c} --version`)));
    console.log(
      `\nstart-up (tensorseal --version${rt}): ${fmt(startup.median)} s (${fmt(startup.min)}–${fmt(startup.max)}), peak ${startup.rss?.toFixed(0) ?? "n/a"} MiB`,
    );
  }
  addPath("seal -> /dev/null (stdout)", [
    { name: `tensorseal seal${rt1}`, cmd: `${ts.seal} -o - > /dev/null` },
    ...base("tensorseal seal", (t) => `${t.seal} -o - > /dev/null`),
    ...peer(age, { name: "age -e", cmd: `${ageSeal} ${q(input)} > /dev/null` }),
    ...peer(gpg, {
      name: "gpg -e (no compression)",
      cmd: `gpg --homedir ${q(gpgHome)} --batch --trust-model always -z 0 -r bench@tensorseal.invalid -e -o - ${q(input)} > /dev/null`,
    }),
    ...peer(openssl, {
      name: "openssl enc aes-256-ctr",
      cmd: `openssl enc -aes-256-ctr -pbkdf2 -pass pass:bench -in ${q(input)} > /dev/null`,
    }),
    ...peer(!!esdk, { name: ESDK, cmd: `${esdk?.encrypt} ${q(input)} > /dev/null` }),
  ]);
  addPath("open -> /dev/null (stdout)", [
    { name: `tensorseal open${rt1}`, cmd: `${ts.open} -o - > /dev/null` },
    ...base("tensorseal open", (t) => `${t.open} -o - > /dev/null`),
    ...peer(age, { name: "age -d", cmd: `${ageOpen} ${q(ageSealed)} > /dev/null` }),
    ...peer(!!esdk, { name: ESDK, cmd: `${esdk?.decrypt} ${q(esdk?.sealed ?? "")} > /dev/null` }),
  ]);
  addPath("seal through pipes (cat | … | cat)", [
    { name: `tensorseal seal${rt1}`, cmd: `cat ${q(input)} | ${ts.sealPipe} | cat > /dev/null` },
    ...base("tensorseal seal", (t) => `cat ${q(input)} | ${t.sealPipe} | cat > /dev/null`),
    ...peer(age, { name: "age -e", cmd: `cat ${q(input)} | ${ageSeal} | cat > /dev/null` }),
    ...peer(!!esdk, { name: ESDK, cmd: `cat ${q(input)} | ${esdk?.encrypt} - | cat > /dev/null` }),
    { name: CAT_PIPE, cmd: `cat ${q(input)} | cat | cat > /dev/null` },
  ]);
  addPath("open through pipes (cat | … | cat)", [
    { name: `tensorseal open${rt1}`, cmd: `cat ${q(sealed)} | ${ts.openPipe} | cat > /dev/null` },
    ...base("tensorseal open", (t) => `cat ${q(sealed)} | ${t.openPipe} | cat > /dev/null`),
    ...peer(age, { name: "age -d", cmd: `cat ${q(ageSealed)} | ${ageOpen} | cat > /dev/null` }),
    ...peer(!!esdk, {
      name: ESDK,
      cmd: `cat ${q(esdk?.sealed ?? "")} | ${esdk?.decrypt} - | cat > /dev/null`,
    }),
    { name: CAT_PIPE, cmd: `cat ${q(sealed)} | cat | cat > /dev/null` },
  ]);
  addPath("seal file -> file (fsynced)", [
    { name: `tensorseal seal${rt1}`, cmd: `${ts.seal} -o ${q(out)}`, prep: rmOut },
    ...base("tensorseal seal", (t) => `${t.seal} -o ${q(out)}`, rmOut),
    { name: "cp + sync", cmd: `cp ${q(input)} ${q(out)} && sync ${q(out)}`, prep: rmOut },
    ...peer(age, {
      name: "age -e + sync",
      cmd: `${ageSeal} -o ${q(out)} ${q(input)} && sync ${q(out)}`,
      prep: rmOut,
    }),
    ...peer(!!esdk, { name: ESDK, cmd: `${esdk?.encrypt} ${q(input)} ${q(out)}`, prep: rmOut }),
  ]);
  addPath("open file -> file (fsynced)", [
    { name: `tensorseal open${rt1}`, cmd: `${ts.open} -o ${q(out)}`, prep: rmOut },
    ...base("tensorseal open", (t) => `${t.open} -o ${q(out)}`, rmOut),
    { name: "cp + sync", cmd: `cp ${q(sealed)} ${q(out)} && sync ${q(out)}`, prep: rmOut },
    ...peer(age, {
      name: "age -d + sync",
      cmd: `${ageOpen} -o ${q(out)} ${q(ageSealed)} && sync ${q(out)}`,
      prep: rmOut,
    }),
    ...peer(!!esdk, {
      name: ESDK,
      cmd: `${esdk?.decrypt} ${q(esdk?.sealed ?? "")} ${q(out)}`,
      prep: rmOut,
    }),
  ]);
  for (const n of notes) console.log(`note: ${n}`);
  console.log(`\nratio = peer median / tensorseal median (above 1x: tensorseal is faster)\n`);
  console.log(markdown(rows));
  rmSync(dir, { recursive: true, force: true });
}

main();
