/**
 * Start-up benchmark (issue #11): whole-process wall and CPU time (user + system, from bash's
 * `time`) of short CLI commands, each next to `node -e 0` measured in the same rounds. CPU time
 * is the steadier figure on a shared machine, wall time what a user waits. Cases run round-robin (one of each per round, after
 * one warm-up round) so drift of the shared machine hits every case alike; medians and
 * min–max over the rounds, and each median as a ratio to node's. Peak RSS from one extra run of
 * each case under /usr/bin/time (its "maximum resident set size"), or, without it, from a
 * preload that reports the child's own process.resourceUsage(). Files loaded come from the
 * test preload test/cli/module-log.ts. `age` joins as a peer when it is on PATH.
 * Each command runs twice per round: as users run it (package.json "bin": dist/cli/tensorseal.cjs,
 * which runs inspect, seal, open and a lone --version from one CommonJS file each,
 * scripts/build-cli.mjs) and from the whole CLI's ES module bundle (dist/cli/main.js, "ESM
 * bundle": what the bin was before those files), so their gain is measured in the same run,
 * and each one-command file run directly by Node ("no code cache": what the bin ran before it
 * compiled them with their V8 code cache, src/cli/code-cache.ts).
 * Run: npm run bench:startup [-- ROUNDS]   (default 9, at least 7)
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, "../..");
const PKG = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  bin: Record<string, string>;
};
/** What users run (package.json "bin"), and the whole CLI's ES module bundle. */
const CLI = join(ROOT, PKG.bin["tensorseal"]!);
const ESM_CLI = join(ROOT, "dist", "cli", "main.js");
const MODULE_LOG = resolve(here, "../test/cli/module-log.js");
const RSS_PRELOAD = resolve(here, "startup-rss.js");
const ROUNDS = Math.max(7, Number(process.argv[2] ?? 9));
const GOALS: Record<string, number> = {
  inspect: 1.5,
  seal: 2,
  open: 2,
  "seal -r (X25519)": 2,
  "open -i (X25519)": 2,
};

interface Case {
  name: string;
  cmd: string;
  args: string[];
}

function which(cmd: string): string | null {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

interface Timing {
  wallMs: number;
  /** User + system CPU of the command, ms: steadier than wall time on a busy machine. */
  cpuMs: number;
}

/**
 * One run, timed by bash's `time` keyword (millisecond wall and CPU of the command itself, no
 * bash start-up inside; the same small wrapper cost for every case, node -e 0 included).
 */
function run(c: Case, env: NodeJS.ProcessEnv, cwd: string): Timing {
  const script = 'TIMEFORMAT="%3R %3U %3S"; time { "$@" >/dev/null 2>&1; }';
  const r = spawnSync("bash", ["-c", script, "bash", c.cmd, ...c.args], {
    env,
    cwd,
    encoding: "utf8",
  });
  const [real, user, sys] = r.stderr.trim().split("\n").at(-1)!.split(" ").map(Number);
  if (r.status !== 0 || real === undefined || Number.isNaN(real))
    throw new Error(`${c.name} failed (exit ${r.status}): run it by hand to see why`);
  return { wallMs: real * 1000, cpuMs: (user! + sys!) * 1000 };
}

/** Peak RSS of one run, MiB. */
function peakRss(c: Case, env: NodeJS.ProcessEnv, cwd: string, time: string | null): number {
  if (time) {
    const r = spawnSync(time, ["-f", "%M", c.cmd, ...c.args], { env, cwd, encoding: "utf8" });
    const kib = Number(r.stderr.trim().split("\n").at(-1));
    return kib / 1024;
  }
  // Without /usr/bin/time: node children report their own peak at exit (age cannot).
  if (c.cmd !== process.execPath) return Number.NaN;
  const out = join(cwd, "rss.txt");
  spawnSync(c.cmd, ["--import", RSS_PRELOAD, ...c.args], {
    env: { ...env, TENSORSEAL_RSS_FILE: out },
    cwd,
    stdio: "ignore",
  });
  return Number(readFileSync(out, "utf8")) / 1024;
}

/** Which source modules each file of the bundle holds (written by scripts/build-cli.mjs). */
const BUNDLE_META = join(ROOT, "dist", "cli.meta.json");
const BUNDLE_DIR = pathToFileURL(join(ROOT, "dist", "cli")).href;

/**
 * Distinct files the command loaded, and the modules in them (a file of the bundle holds
 * several; any other file is one), node cases only.
 */
function filesLoaded(
  c: Case,
  env: NodeJS.ProcessEnv,
  cwd: string,
): { files: number; modules: number } | null {
  if (c.cmd !== process.execPath) return null;
  const log = join(cwd, "modules.log");
  rmSync(log, { force: true });
  spawnSync(c.cmd, ["--import", MODULE_LOG, ...c.args], {
    env: { ...env, TENSORSEAL_MODULE_LOG: log },
    cwd,
    stdio: "ignore",
  });
  if (!existsSync(log)) return { files: 0, modules: 0 };
  const files = new Set(readFileSync(log, "utf8").split("\n").filter(Boolean));
  const meta = JSON.parse(readFileSync(BUNDLE_META, "utf8")) as Record<string, string[]>;
  let modules = 0;
  for (const f of files) {
    modules += f.startsWith(`${BUNDLE_DIR}/`)
      ? (meta[f.slice(BUNDLE_DIR.length + 1)]?.length ?? 1)
      : 1;
  }
  return { files: files.size, modules };
}

const signed = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(1)}`;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function main(): void {
  const dir = mkdtempSync(join(tmpdir(), "tseal-bench-startup-"));
  try {
    const rootKey = join(dir, "root.key");
    writeFileSync(rootKey, randomBytes(32).toString("hex"), { mode: 0o600 });
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: dir,
      TENSORSEAL_HOME: join(dir, "home"),
      TENSORSEAL_ROOT_KEY_FILE: rootKey,
    };
    const node = (name: string, ...args: string[]): Case => ({
      name,
      cmd: process.execPath,
      args: [CLI, ...args],
    });
    // The bin's one-command file run by Node's own loader: what the bin ran before it used the
    // V8 code cache (src/cli/code-cache.ts).
    const noCache = (name: string, bundle: string, ...args: string[]): Case => ({
      name: `${name} (no code cache)`,
      cmd: process.execPath,
      args: [join(dirname(CLI), `${bundle}.cjs`), ...args],
    });
    const esm = (name: string, ...args: string[]): Case => ({
      name: `${name} (ESM bundle)`,
      cmd: process.execPath,
      args: [ESM_CLI, ...args],
    });
    writeFileSync(join(dir, "small.bin"), randomBytes(1024));
    run(node("init", "init"), env, dir);
    run(node("setup", "seal", "small.bin", "-o", "small.tseal"), env, dir);
    // A recipient's X25519 key (HPKE) instead of the keystore: what `seal -r` and `open -i` add.
    run(node("keygen", "keygen", "-o", "id.key"), env, dir);
    const recipient = /^# recipient: (\S+)$/m.exec(readFileSync(join(dir, "id.key"), "utf8"))![1]!;
    run(node("setup -r", "seal", "small.bin", "-r", recipient, "-o", "r.tseal"), env, dir);
    const cases: Case[] = [
      { name: "node -e 0", cmd: process.execPath, args: ["-e", "0"] },
      node("--version", "--version"),
      node("inspect", "inspect", "small.tseal"),
      node("seal", "seal", "small.bin", "-o", "x.tseal", "--force"),
      node("open", "open", "small.tseal", "-o", "y.bin", "--force"),
      node("seal -r (X25519)", "seal", "small.bin", "-r", recipient, "-o", "xr.tseal", "--force"),
      node("open -i (X25519)", "open", "r.tseal", "-i", "id.key", "-o", "yr.bin", "--force"),
      noCache("--version", "version", "--version"),
      noCache("inspect", "inspect", "inspect", "small.tseal"),
      noCache("seal", "seal", "seal", "small.bin", "-o", "x.tseal", "--force"),
      noCache("open", "open", "open", "small.tseal", "-o", "y.bin", "--force"),
      esm("--version", "--version"),
      esm("inspect", "inspect", "small.tseal"),
      esm("seal", "seal", "small.bin", "-o", "x.tseal", "--force"),
      esm("open", "open", "small.tseal", "-o", "y.bin", "--force"),
    ];
    const age = which("age");
    const ageKeygen = which("age-keygen");
    if (age && ageKeygen) {
      spawnSync(ageKeygen, ["-o", join(dir, "age.key")], { stdio: "ignore" });
      const pub = spawnSync(ageKeygen, ["-y", join(dir, "age.key")], { encoding: "utf8" });
      cases.push(
        {
          name: "age -e",
          cmd: age,
          args: ["-e", "-r", pub.stdout.trim(), "-o", "a.age", "small.bin"],
        },
        { name: "age -d", cmd: age, args: ["-d", "-i", "age.key", "-o", "a.out", "a.age"] },
      );
      run(cases.at(-2)!, env, dir);
    }
    const times = new Map<string, Timing[]>(cases.map((c) => [c.name, []]));
    for (let round = 0; round <= ROUNDS; round++) {
      for (const c of cases) {
        const t = run(c, env, dir);
        if (round > 0) times.get(c.name)!.push(t); // round 0 warms the page cache
      }
    }
    const time = existsSync("/usr/bin/time") ? "/usr/bin/time" : null;
    const wall = (name: string) => times.get(name)!.map((t) => t.wallMs);
    const cpu = (name: string) => times.get(name)!.map((t) => t.cpuMs);
    const baseWall = median(wall("node -e 0"));
    const baseCpu = median(cpu("node -e 0"));
    const baseRss = peakRss(cases[0]!, env, dir, time);
    console.log(
      `Start-up, ${ROUNDS} alternating rounds (node ${process.version}; peak RSS via ${time ?? "resourceUsage preload"}${age ? "" : "; age not installed"}):`,
    );
    console.log(
      "| command | wall ms, median (min–max) | wall / node -e 0 | CPU ms, median (min–max) | CPU / node -e 0 | goal | peak RSS MiB (vs node) | files loaded (modules in them) |",
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
    const range = (xs: number[]) =>
      `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
    for (const c of cases) {
      const wallRatio = median(wall(c.name)) / baseWall;
      const cpuRatio = median(cpu(c.name)) / baseCpu;
      const goal = GOALS[c.name];
      const verdict = (r: number) => (goal && r <= goal ? "met" : "NOT met");
      const rss = peakRss(c, env, dir, time);
      const files = filesLoaded(c, env, dir);
      console.log(
        `| ${c.name} | ${range(wall(c.name))} | ${wallRatio.toFixed(2)}x | ${range(cpu(c.name))} | ${cpuRatio.toFixed(2)}x | ${goal ? `<= ${goal}x: wall ${verdict(wallRatio)}, CPU ${verdict(cpuRatio)}` : ""} | ${rss.toFixed(1)} (${signed(rss - baseRss)}) | ${files ? `${files.files} (${files.modules})` : ""} |`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
