/**
 * Start-up stays light (issue #11): `--version`, `--help`, `inspect`, `seal` and `open` of a small
 * file load none of the key service's packages (Fastify, Kysely, pg, better-sqlite3, Cedar, JOSE),
 * the AWS SDK or PKCS#11, and each loads a bounded number of files and modules. Each run is the
 * CLI users run (package.json "bin": the esbuild bundle, scripts/build-cli.mjs) as a real process
 * under the module-log.ts preload, which lists every file it loaded; a file of the bundle holds
 * several source modules, listed by dist/cli.meta.json (written by the build), so what a run
 * loads is counted in modules as well as files. The most used commands run from one CommonJS
 * file each (src/cli/fast-commands.ts) that holds everything the command can reach, lazily
 * loaded modules included (esbuild wraps each in a function run on first use): of those, a run
 * counts the modules it ran, seen by V8's coverage of those functions (NODE_V8_COVERAGE).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { FAST_COMMANDS } from "../../src/cli/fast-commands.js";
import { buildProgram, commandNamed } from "../../src/cli/program.js";
import { generateX25519Identity } from "../../src/keys/x25519.js";
import { generateXWingIdentity } from "../../src/keys/xwing.js";
import { CLI, type Sandbox, sandboxWithSmallSeal } from "./helpers.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const PRELOAD = join(HERE, "module-log.js");
const REPO = resolve(HERE, "../../..");
const BUNDLE = pathToFileURL(dirname(CLI)).href;
const DIST_SRC = pathToFileURL(join(REPO, "dist", "src")).href;
/** Bundle file (relative to dist/cli) -> the source modules in it, relative to the repo. */
const META = JSON.parse(readFileSync(join(REPO, "dist", "cli.meta.json"), "utf8")) as Record<
  string,
  string[]
>;

/** Packages no start-up path below may load (they belong to serve, KMS, HSM or policy runs). */
const HEAVY = [
  "fastify",
  "kysely",
  "pg",
  "better-sqlite3",
  "@cedar-policy/cedar-wasm",
  "@aws-sdk/client-kms",
  "pkcs11js",
  "jose",
  "yaml",
  // X-Wing's ML-KEM (post-quantum recipients load it when one is used).
  "@noble/post-quantum",
  "@noble/curves",
];

/**
 * `--version` loaded 14 files before the bundle (commander's 8 and the CLI's entry modules; no
 * command's registration), 835 before issue #11; bundled, 6 files holding those 14 modules; with
 * bin.ts, 2 CommonJS files (tensorseal.cjs, version.cjs).
 * `--help` loads every command's registration. The bounds leave room for growth, not for a
 * heavy import.
 */
const VERSION_MAX_FILES = 4;
const VERSION_MAX_MODULES = 30;
const HELP_MAX_MODULES = 100;
/**
 * `inspect`, `seal` and `open` of a small file each loaded at most 82 of the bundle's 364
 * modules when this was written: a third of the whole tree is room for growth, not for a
 * command that loads everything.
 */
const COMMAND_MAX_SHARE = 1 / 3;

let box: Sandbox;

before(() => {
  box = sandboxWithSmallSeal();
});
after(() => box.cleanup());

interface Loaded {
  status: number;
  /** Distinct files, as file: URLs. */
  files: string[];
  /**
   * Source modules those files hold: "src/cli/main" for src/cli/main.ts (bundled) or
   * dist/src/cli/main.js (tsc's output, e.g. a worker), else the file's path under node_modules
   * ("node_modules/commander/lib/command.js"), or the URL.
   */
  modules: string[];
  packages: Set<string>;
}

function moduleName(path: string): string {
  const src = /^src\/(.*)\.ts$/.exec(path);
  if (src) return `src/${src[1]}`;
  const i = path.lastIndexOf("node_modules/");
  return i >= 0 ? path.slice(i) : path;
}

/**
 * Modules of the CommonJS bundles that a run never ran, by bundle file (relative to dist/cli):
 * each wrapped module is a function named by its path, which V8's coverage reports as called or
 * not. A module not wrapped runs when its file loads.
 */
function notRun(coverageDir: string): Map<string, Set<string>> {
  const skipped = new Map<string, Set<string>>();
  if (!existsSync(coverageDir)) return skipped;
  for (const f of readdirSync(coverageDir)) {
    const report = JSON.parse(readFileSync(join(coverageDir, f), "utf8")) as {
      result: { url: string; functions: { functionName: string; ranges: { count: number }[] }[] }[];
    };
    for (const script of report.result) {
      if (!script.url.startsWith(`${BUNDLE}/`) || !script.url.endsWith(".cjs")) continue;
      const file = script.url.slice(BUNDLE.length + 1);
      const inputs = new Set(META[file] ?? []);
      const never = skipped.get(file) ?? new Set<string>();
      for (const fn of script.functions) {
        if (inputs.has(fn.functionName) && fn.ranges[0]?.count === 0) never.add(fn.functionName);
      }
      skipped.set(file, never);
    }
  }
  return skipped;
}

function modulesIn(url: string, skipped: Map<string, Set<string>>): string[] {
  if (url.startsWith(`${BUNDLE}/`)) {
    const file = url.slice(BUNDLE.length + 1);
    const inputs = META[file];
    assert.ok(inputs, `${url} is not in dist/cli.meta.json: rebuild (npm run build)`);
    return inputs.filter((m) => !skipped.get(file)?.has(m)).map(moduleName);
  }
  if (url.startsWith(`${DIST_SRC}/`)) return [`src/${url.slice(DIST_SRC.length + 1, -3)}`];
  return [moduleName(url)];
}

function loadedBy(args: string[]): Loaded {
  const log = join(box.dir, "modules.log");
  const coverage = join(box.dir, "coverage");
  rmSync(log, { force: true });
  rmSync(coverage, { recursive: true, force: true });
  const r = spawnSync(process.execPath, ["--import", PRELOAD, CLI, ...args], {
    env: { ...box.env, TENSORSEAL_MODULE_LOG: log, NODE_V8_COVERAGE: coverage },
    cwd: box.dir,
    encoding: "utf8",
  });
  assert.equal(r.status, 0, `${args.join(" ")}: ${r.stderr}`);
  const files = [...new Set(readFileSync(log, "utf8").split("\n").filter(Boolean))].filter(
    (f) => !f.startsWith(pathToFileURL(HERE).href), // the preload itself
  );
  const skipped = notRun(coverage);
  const modules = [...new Set(files.flatMap((f) => modulesIn(f, skipped)))];
  const packages = new Set<string>();
  for (const m of modules) {
    const p = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(m);
    if (p) packages.add(p[1]!);
  }
  return { status: r.status ?? -1, files, modules, packages };
}

function assertLight(args: string[]): Loaded {
  const l = loadedBy(args);
  const heavy = HEAVY.filter((p) => l.packages.has(p));
  assert.deepEqual(heavy, [], `${args.join(" ")} loaded ${heavy.join(", ")}`);
  const service = l.modules.filter((m) => /^src\/service\/(index|server|db\/)/.test(m));
  assert.deepEqual(service, [], `${args.join(" ")} loaded the key service`);
  return l;
}

/** Every source module of the bundle. */
const ALL_MODULES = new Set(Object.values(META).flat().map(moduleName));

test("the tests run what users run: package.json's bin, the bundle", () => {
  assert.equal(fileURLToPath(`${BUNDLE}/tensorseal.cjs`), CLI);
  assert.ok(
    META["tensorseal.cjs"]?.includes("src/cli/bin.ts"),
    "dist/cli/tensorseal.cjs is bin.ts",
  );
  assert.ok(META["main.js"]?.includes("src/cli/main.ts"), "dist/cli/main.js is the CLI's bundle");
  for (const name of FAST_COMMANDS) {
    assert.ok(META[`${name}.cjs`]?.includes(`src/cli/fast/${name}.ts`), `dist/cli/${name}.cjs`);
  }
  // A test spawning tsc's dist/src/cli/main.js would test another start-up than users get.
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(js|py)$/.test(e.name) && p !== fileURLToPath(import.meta.url)) {
        const text = readFileSync(p, "utf8");
        if (/src\/cli\/main\.js|"src", "cli", "main\.js"/.test(text)) stale.push(p);
      }
    }
  };
  walk(join(REPO, "dist", "test"));
  walk(join(REPO, "python", "tests"));
  assert.deepEqual(stale, [], "spawn the CLI through test/cli/helpers.ts's CLI (the bin)");
});

test("the probe sees what a run loads: `policy test` loads Cedar, --help every registration", () => {
  writeFileSync(
    join(box.dir, "req.json"),
    JSON.stringify([
      { principal: { id: "t", roles: ["admin"] }, action: "unwrap", resource: { type: "Service" } },
    ]),
  );
  const l = loadedBy(["policy", "test", "--request", "req.json"]);
  assert.ok(l.packages.has("@cedar-policy/cedar-wasm"), [...l.packages].join(", "));
  // Modules inside the bundle's files are seen too (commander is bundled, not in node_modules).
  const help = loadedBy(["--help"]);
  assert.ok(help.packages.has("commander"));
  const registrations = help.modules.filter((m) => m.startsWith("src/cli/commands/"));
  assert.ok(registrations.length > 20, registrations.join(", "));
  for (const name of ["init", "seal", "open", "serve", "policy", "incident"]) {
    assert.ok(registrations.includes(`src/cli/commands/${name}`), name);
  }
});

test(`--version loads no heavy package and at most ${VERSION_MAX_FILES} files, ${VERSION_MAX_MODULES} modules`, () => {
  const l = assertLight(["--version"]);
  assert.ok(
    l.files.length <= VERSION_MAX_FILES,
    `--version loaded ${l.files.length} files (bound ${VERSION_MAX_FILES})`,
  );
  assert.ok(
    l.modules.length <= VERSION_MAX_MODULES,
    `--version loaded ${l.modules.length} modules (bound ${VERSION_MAX_MODULES})`,
  );
});

test(`--help loads no heavy package and at most ${HELP_MAX_MODULES} modules`, () => {
  const l = assertLight(["--help"]);
  assert.ok(l.modules.length <= HELP_MAX_MODULES, `--help loaded ${l.modules.length} modules`);
  assertLight(["seal", "--help"]);
});

test("--version prints the version without loading any command", () => {
  const r = box.run(["--version"]);
  assert.equal(r.status, 0);
  assert.equal(r.stdout.toString().trim(), "0.1.0");
  const l = loadedBy(["--version"]);
  const commands = l.modules.filter((m) => m.startsWith("src/cli/commands/"));
  assert.deepEqual(commands, []);
});

/** A command's run loads its own part of the tree, never most of it. */
function assertShare(args: string[], l: Loaded): void {
  const ours = l.modules.filter((m) => ALL_MODULES.has(m)).length;
  assert.ok(
    ours <= ALL_MODULES.size * COMMAND_MAX_SHARE,
    `${args[0]} loaded ${ours} of the bundle's ${ALL_MODULES.size} modules`,
  );
}

test("inspect FILE loads no heavy package, no keystore and no engine workers", () => {
  const args = ["inspect", "small.tseal"];
  const l = assertLight(args);
  // Its own CommonJS file, not the whole CLI's ES modules (bin.ts).
  assert.deepEqual(
    l.files
      .filter((f) => f.startsWith(`${BUNDLE}/`))
      .map((f) => f.slice(BUNDLE.length + 1))
      .sort(),
    ["inspect.cjs", "tensorseal.cjs"],
  );
  const keys = l.modules.filter((m) =>
    /^src\/(cli\/keys-context|keys\/keystore|engine\/pool)$/.test(m),
  );
  assert.deepEqual(keys, [], "a plain inspect reads the public header only");
  assertShare(args, l);
});

test("seal and open of a small file load no heavy package and a bounded part of the tree", () => {
  const seal = ["seal", "small.bin", "-o", "x.tseal"];
  const open = ["open", "x.tseal", "-o", "y.bin"];
  assertShare(seal, assertLight(seal));
  assertShare(open, assertLight(open));
  assert.deepEqual(readFileSync(join(box.dir, "y.bin")), readFileSync(join(box.dir, "small.bin")));
});

test("X-Wing's ML-KEM loads for a post-quantum recipient only (the probe sees it then)", async () => {
  const pq = await generateXWingIdentity();
  const x = generateX25519Identity();
  const pqRun = loadedBy(["seal", "small.bin", "-o", "pq-recipient.tseal", "-r", pq.recipient]);
  assert.ok(pqRun.packages.has("@noble/post-quantum"), [...pqRun.packages].join(", "));
  assertLight(["seal", "small.bin", "-o", "x25519-recipient.tseal", "-r", x.recipient]);
});

test("a run that names a command builds that command exactly as the whole tree does", async () => {
  const whole = await buildProgram();
  const names = [...new Set(whole.commands.map((c) => c.name()))];
  for (const name of names) {
    const narrow = await buildProgram([name, "--help"]);
    assert.deepEqual(
      narrow.commands.map((c) => c.name()),
      [name],
    );
    const help = (p: typeof whole) =>
      p.commands
        .filter((c) => c.name() === name)
        .flatMap((c) => [c.helpInformation(), ...c.commands.map((s) => s.helpInformation())]);
    assert.deepEqual(help(narrow), help(whole), name);
  }
  // Global options and their values are not command names; unknown names get the whole tree.
  assert.equal(commandNamed(["--server", "seal", "open", "x"]), "open");
  assert.equal(commandNamed(["--server=https://kms", "inspect", "f"]), "inspect");
  assert.equal(commandNamed(["help", "seal"]), null);
  assert.equal(commandNamed(["sael", "f"]), null);
  assert.equal((await buildProgram(["sael"])).commands.length, whole.commands.length);
  assert.equal(
    (await buildProgram(["--version", "--help"])).commands.length,
    whole.commands.length,
  );
  assert.equal((await buildProgram(["--version"])).commands.length, 0);
});

test("a command run from its own bundle behaves as in the whole CLI: help, errors, exit codes", () => {
  // dist/cli/main.js is the whole CLI (ES modules); the bin runs FAST_COMMANDS from NAME.cjs.
  const whole = join(dirname(CLI), "main.js");
  const run = (cli: string, args: string[]) => {
    const r = spawnSync(process.execPath, [cli, ...args], {
      env: box.env,
      cwd: box.dir,
      encoding: "utf8",
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const lines: string[][] = [["--version"], ["-V"]];
  for (const name of FAST_COMMANDS) {
    lines.push(
      [name, "--help"],
      [name],
      [name, "--no-such-flag", "small.tseal"],
      ["--server", "https://127.0.0.1:1", name, "--help"],
      [name, "missing.tseal"],
    );
  }
  lines.push(["inspect", "small.tseal", "--json"], ["verify", "small.tseal"]);
  for (const args of lines) {
    const fast = run(CLI, args);
    assert.deepEqual(fast, run(whole, args), args.join(" "));
    if (args[0] !== "--server") assert.notEqual(fast.stdout + fast.stderr, "", args.join(" "));
  }
  assert.equal(run(CLI, ["inspect", "small.tseal", "--json"]).status, 0);
  assert.equal(run(CLI, ["verify"]).status, 2);
});
