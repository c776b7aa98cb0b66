/**
 * `npm run bench`: engine throughput against limits measured in the same run (this machine's
 * speed drifts ±25%, so only same-run ratios mean anything).
 *   - to memory: seal into tmpfs and verify (decrypt, discard) vs `openssl speed -multi 2`
 *   - file to file: seal/open on disk vs `cp` of the same file, and vs `age -e/-d` if installed
 *   - peak RSS of each operation (its own process)
 * Env: BENCH_SIZE_MIB (default 2048), BENCH_CHUNKS (default "1048576,262144,16384").
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
const diskDir = resolve(here, "../../.bench-tmp");
const memDir = "/dev/shm/tensorseal-bench";
const GB = 1e9;
const bytes = sizeMiB * 1024 * 1024;
const kekHex = randomBytes(32).toString("hex");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function op(kind: string, input: string, output: string, chunk: number) {
  const r = spawnSync(
    process.execPath,
    [join(here, "op.js"), kind, input, output, kekHex, String(chunk)],
    {
      encoding: "utf8",
    },
  );
  if (r.status !== 0) throw new Error(`${kind} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as { seconds: number; maxRssMiB: number };
}

function timeCmd(cmd: string, args: string[]): number {
  const t = process.hrtime.bigint();
  execFileSync(cmd, args, { stdio: ["ignore", "ignore", "inherit"] });
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** `openssl speed -evp aes-256-gcm -multi 2 -bytes CHUNK`: GB/s of the last (summed) line. */
function opensslLimit(chunk: number): number {
  const out = execFileSync(
    "openssl",
    [
      "speed",
      "-evp",
      "aes-256-gcm",
      "-multi",
      String(availableParallelism()),
      "-bytes",
      String(chunk),
      "-seconds",
      "3",
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
  );
  const line = out
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("evp") || l.includes("aes-256-gcm"))
    .pop()!;
  const kbps = Number(line.trim().split(/\s+/).pop()!.replace("k", ""));
  return (kbps * 1000) / GB;
}

function hasAge(): boolean {
  return spawnSync("age", ["--version"]).status === 0;
}

function writeInput(path: string): void {
  const block = randomBytes(64 << 20);
  const fd = openSync(path, "w");
  for (let done = 0; done < bytes; done += block.length)
    writeSync(fd, block, 0, Math.min(block.length, bytes - done));
  closeSync(fd);
}

function run(): void {
  mkdirSync(diskDir, { recursive: true });
  mkdirSync(memDir, { recursive: true });
  const input = join(diskDir, "input.bin");
  try {
    writeInput(input);
    execFileSync("cat", [input], { stdio: ["ignore", "ignore", "inherit"] }); // into page cache
    const rows: string[] = [];
    const say = (s: string) => {
      rows.push(s);
      process.stdout.write(`${s}\n`);
    };
    say(
      `# TensorSeal engine benchmark, ${new Date().toISOString().slice(0, 10)}, ${sizeMiB} MiB input in page cache, ${availableParallelism()} cores`,
    );
    for (const chunk of chunks) {
      const limit = opensslLimit(chunk);
      const sealed = join(memDir, "sealed.tseal");
      const sealMem = median(
        [0, 1, 2].map(() => op("seal", input, sealed, chunk)).map((r) => r.seconds),
      );
      const verify = op("verify", sealed, "", chunk);
      const sealGBs = bytes / sealMem / GB;
      const openGBs = bytes / verify.seconds / GB;
      say(
        `chunk ${chunk / 1024} KiB | openssl -multi limit ${limit.toFixed(2)} GB/s | seal→tmpfs ${sealGBs.toFixed(2)} GB/s (${(sealGBs / limit).toFixed(2)}x) | open→memory ${openGBs.toFixed(2)} GB/s (${(openGBs / limit).toFixed(2)}x) [goal >= 0.8x]`,
      );
      rmSync(sealed, { force: true });
    }
    const chunk = chunks[0]!;
    const sealedDisk = join(diskDir, "sealed.tseal");
    const outDisk = join(diskDir, "opened.bin");
    const cp = median([0, 1, 2].map(() => timeCmd("cp", [input, join(diskDir, "copy.bin")])));
    rmSync(join(diskDir, "copy.bin"), { force: true });
    const seal = op("seal", input, sealedDisk, chunk);
    const open = op("open", sealedDisk, outDisk, chunk);
    rmSync(outDisk, { force: true });
    say(
      `file→file (chunk ${chunk / 1024} KiB) | cp ${cp.toFixed(2)} s | seal ${seal.seconds.toFixed(2)} s (${(seal.seconds / cp).toFixed(2)}x cp) | open ${open.seconds.toFixed(2)} s (${(open.seconds / cp).toFixed(2)}x cp) [goal <= 1.3x]`,
    );
    say(
      `peak RSS | seal ${seal.maxRssMiB.toFixed(0)} MiB | open ${open.maxRssMiB.toFixed(0)} MiB [goal <= 256 MiB]`,
    );
    if (hasAge()) {
      const idFile = join(diskDir, "age.key");
      execFileSync("age-keygen", ["-o", idFile], { stdio: "ignore" });
      const recipient = execFileSync("age-keygen", ["-y", idFile], { encoding: "utf8" }).trim();
      const ageOut = join(diskDir, "age.out");
      const ageE = timeCmd("age", ["-r", recipient, "-o", join(diskDir, "x.age"), input]);
      const ageD = timeCmd("age", ["-d", "-i", idFile, "-o", ageOut, join(diskDir, "x.age")]);
      say(
        `age (file→file) | age -e ${ageE.toFixed(2)} s | age -d ${ageD.toFixed(2)} s | tensorseal open is ${(ageD / open.seconds).toFixed(2)}x faster than age -d [goal >= 2x]`,
      );
    } else {
      say("age not installed (apt-get install age) — age comparison skipped");
    }
  } finally {
    rmSync(diskDir, { recursive: true, force: true });
    rmSync(memDir, { recursive: true, force: true });
  }
}

run();
