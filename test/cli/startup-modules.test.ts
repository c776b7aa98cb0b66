/**
 * Start-up stays light (issue #11): `--version`, `--help`, `inspect`, `seal` and `open` of a small
 * file load none of the key service's packages (Fastify, Kysely, pg, better-sqlite3, Cedar, JOSE),
 * the AWS SDK or PKCS#11, and `--version` loads a bounded number of files. Each run is a real CLI
 * process under the module-log.ts preload, which lists every file it loaded.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { buildProgram, commandNamed } from "../../src/cli/program.js";
import { CLI, type Sandbox, sandbox } from "./helpers.js";

const PRELOAD = join(dirname(fileURLToPath(import.meta.url)), "module-log.js");

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
  "@hpke/core",
];

/**
 * `--version` loaded 14 files when this was written (commander's 8 and the CLI's entry modules;
 * no command's registration), 835 before issue #11; `--help` loads every command's registration
 * (52). The bounds leave room for growth, not for a heavy import.
 */
const VERSION_MAX_FILES = 30;
const HELP_MAX_FILES = 80;

let box: Sandbox;

before(() => {
  box = sandbox();
  assert.equal(box.run(["init"]).status, 0);
  writeFileSync(join(box.dir, "small.bin"), randomBytes(1024));
  assert.equal(box.run(["seal", "small.bin", "-o", "small.tseal"]).status, 0);
});
after(() => box.cleanup());

interface Loaded {
  status: number;
  files: string[];
  packages: Set<string>;
}

function loadedBy(args: string[]): Loaded {
  const log = join(box.dir, "modules.log");
  rmSync(log, { force: true });
  const r = spawnSync(process.execPath, ["--import", PRELOAD, CLI, ...args], {
    env: { ...box.env, TENSORSEAL_MODULE_LOG: log },
    cwd: box.dir,
    encoding: "utf8",
  });
  assert.equal(r.status, 0, `${args.join(" ")}: ${r.stderr}`);
  const files = [...new Set(readFileSync(log, "utf8").split("\n").filter(Boolean))];
  const packages = new Set<string>();
  for (const f of files) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f.slice(f.lastIndexOf("node_modules")));
    if (m) packages.add(m[1]!);
  }
  return { status: r.status ?? -1, files, packages };
}

function assertLight(args: string[]): Loaded {
  const l = loadedBy(args);
  const heavy = HEAVY.filter((p) => l.packages.has(p));
  assert.deepEqual(heavy, [], `${args.join(" ")} loaded ${heavy.join(", ")}`);
  const service = l.files.filter((f) => /\/dist\/src\/service\/(index|server|db\/)/.test(f));
  assert.deepEqual(service, [], `${args.join(" ")} loaded the key service`);
  return l;
}

test("the probe sees what a run loads: `policy test` loads Cedar", () => {
  writeFileSync(
    join(box.dir, "req.json"),
    JSON.stringify([
      { principal: { id: "t", roles: ["admin"] }, action: "unwrap", resource: { type: "Service" } },
    ]),
  );
  const l = loadedBy(["policy", "test", "--request", "req.json"]);
  assert.ok(l.packages.has("@cedar-policy/cedar-wasm"), [...l.packages].join(", "));
});

test(`--version loads no heavy package and at most ${VERSION_MAX_FILES} files`, () => {
  const l = assertLight(["--version"]);
  assert.ok(
    l.files.length <= VERSION_MAX_FILES,
    `--version loaded ${l.files.length} files (bound ${VERSION_MAX_FILES})`,
  );
});

test(`--help loads no heavy package and at most ${HELP_MAX_FILES} files`, () => {
  const l = assertLight(["--help"]);
  assert.ok(l.files.length <= HELP_MAX_FILES, `--help loaded ${l.files.length} files`);
  assertLight(["seal", "--help"]);
});

test("--version prints the version without loading any command", () => {
  const r = box.run(["--version"]);
  assert.equal(r.status, 0);
  assert.equal(r.stdout.toString().trim(), "0.1.0");
  const l = loadedBy(["--version"]);
  const commands = l.files.filter((f) => /\/dist\/src\/cli\/commands\//.test(f));
  assert.deepEqual(commands, []);
});

test("inspect FILE loads no heavy package, no keystore and no engine workers", () => {
  const l = assertLight(["inspect", "small.tseal"]);
  const keys = l.files.filter((f) =>
    /\/dist\/src\/(cli\/keys-context|keys\/keystore|engine\/pool)\.js$/.test(f),
  );
  assert.deepEqual(keys, [], "a plain inspect reads the public header only");
});

test("seal and open of a small file load no heavy package", () => {
  assertLight(["seal", "small.bin", "-o", "x.tseal"]);
  assertLight(["open", "x.tseal", "-o", "y.bin"]);
  assert.deepEqual(readFileSync(join(box.dir, "y.bin")), readFileSync(join(box.dir, "small.bin")));
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
