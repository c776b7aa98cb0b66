/**
 * The one-command bundles run with the V8 code cache the build wrote beside them
 * (src/cli/code-cache.ts, scripts/build-code-cache.mjs), issue #11. V8 accepts it on the Node
 * that built it; a cache is used only for the exact file it was made from (V8 itself checks only
 * the source's length), and a missing, foreign or stale cache leaves the command's behaviour
 * as it is without one. A long run (a URL, or 64 MiB or more) compiles lean, without it. Also:
 * Node's heavier built-ins load only when a command calls them (scripts/build-cli.mjs,
 * lazyBuiltins).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { cacheFile } from "../../src/cli/code-cache.js";
import {
  cacheVariant,
  FAST_COMMANDS,
  LONG_RUN_BYTES,
  longRun,
} from "../../src/cli/fast-commands.js";
import { primitivesBackend } from "../../src/format/primitives.js";
import { CLI, type Sandbox, sandboxWithSmallSeal } from "./helpers.js";

const DIST_CLI = dirname(CLI);
/** A copy of the bin and two bundles beside dist/cli, so their relative paths resolve alike. */
const COPY = join(DIST_CLI, "..", `cli-cache-test-${process.pid}`);

let box: Sandbox;

before(() => {
  box = sandboxWithSmallSeal();
  mkdirSync(COPY);
  for (const f of ["tensorseal.cjs", "inspect.cjs", "seal.cjs"])
    copyFileSync(join(DIST_CLI, f), join(COPY, f));
});
after(() => {
  box.cleanup();
  rmSync(COPY, { recursive: true, force: true });
});

function run(cli: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [cli, ...args], {
    env: { ...box.env, ...env },
    cwd: box.dir,
    encoding: "utf8",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const LOADER = fileURLToPath(new URL("../../src/cli/code-cache.js", import.meta.url));

/**
 * What V8 made of `bundle`'s cache, in a fresh process: one that compiled the same source
 * before takes it from V8's in-memory compilation cache and never looks at the cached data.
 */
function cacheUse(bundle: string, lean = false): string {
  const r = spawnSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `const { compileBundle } = await import(${JSON.stringify(LOADER)});
       process.stdout.write(compileBundle(${JSON.stringify(bundle)}, ${lean}).cache);`,
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

const copied = (name: string) => join(COPY, `${name}.cjs`);
const inspectLine = ["inspect", "small.tseal"];

/** What V8 made of `bundle`'s cache for one kind of run (cacheVariant), in a fresh process. */
function variantCacheUse(bundle: string, variant: string): string {
  const r = spawnSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `const { compileBundle } = await import(${JSON.stringify(LOADER)});
       process.stdout.write(compileBundle(${JSON.stringify(bundle)}, false, ${JSON.stringify(variant)}).cache);`,
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test("the build's code cache is accepted by the Node running the tests", () => {
  for (const name of [...FAST_COMMANDS, "version"]) {
    assert.equal(cacheUse(join(DIST_CLI, `${name}.cjs`)), "accepted", name);
  }
  // A cache of its own for a seal to a recipient and an open with an identity.
  for (const [name, variant] of [
    ["seal", "recipient"],
    ["open", "identity"],
  ] as const) {
    const bundle = join(DIST_CLI, `${name}.cjs`);
    assert.equal(variantCacheUse(bundle, variant), "accepted", `${name} ${variant}`);
    assert.notDeepEqual(readFileSync(cacheFile(bundle, variant)), readFileSync(cacheFile(bundle)));
  }
});

test("a run's kind picks its cache: a tseal1 recipient, an identity file, else the default", () => {
  const r = "tseal1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq";
  assert.equal(cacheVariant(["seal", "f.bin", "-r", r]), "recipient");
  assert.equal(cacheVariant(["seal", `--recipient=${r}`, "f.bin"]), "recipient");
  assert.equal(cacheVariant(["seal", `-r${r}`, "f.bin"]), "recipient");
  assert.equal(cacheVariant(["seal", "f.bin", "-r", "tseal1pq1qqqq"]), "recipient");
  assert.equal(cacheVariant(["seal", "f.bin", "-r", "kek:default"]), undefined);
  assert.equal(cacheVariant(["seal", "f.bin"]), undefined);
  assert.equal(cacheVariant(["open", "f.tseal", "-i", "id.key"]), "identity");
  assert.equal(cacheVariant(["open", "f.tseal", "--identity=id.key"]), "identity");
  assert.equal(cacheVariant(["verify", "f.tseal", "-iid.key"]), "identity");
  assert.equal(cacheVariant(["open", "f.tseal"]), undefined);
  assert.equal(cacheVariant(["inspect", "f.tseal", "-i", "x"]), undefined);
  assert.equal(cacheVariant(["open", "f.tseal", "-r", r]), undefined, "open has no recipients");
});

test("a kind of run with no cache of its own uses the default cache", () => {
  const bundle = copied("seal");
  copyFileSync(join(DIST_CLI, "seal.cjs"), bundle);
  const made = run(join(COPY, "tensorseal.cjs"), ["seal", "small.bin", "-o", "c.tseal"], {
    TENSORSEAL_CODE_CACHE_OUT: cacheFile(bundle),
  });
  assert.equal(made.status, 0, made.stderr);
  rmSync(cacheFile(bundle, "recipient"), { force: true });
  assert.equal(variantCacheUse(bundle, "recipient"), "accepted");
});

test("a long run is lean: a URL, or 64 MiB or more into a file; it compiles without the cache", (t) => {
  const dir = join(box.dir, "long-run");
  mkdirSync(dir, { recursive: true });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const big = join(dir, "big.bin");
  writeFileSync(big, "");
  truncateSync(big, LONG_RUN_BYTES); // sparse: no 64 MiB written
  const justUnder = join(dir, "under.bin");
  writeFileSync(justUnder, "");
  truncateSync(justUnder, LONG_RUN_BYTES - 1);
  assert.equal(longRun(["seal", big, "-o", join(dir, "out")]), true);
  assert.equal(longRun(["seal", big]), true, "the default output is a file");
  assert.equal(longRun(["open", big, `--output=${join(dir, "out")}`]), true);
  assert.equal(longRun(["verify", big]), true);
  assert.equal(longRun(["inspect", big]), false, "inspect reads a header at most");
  assert.equal(longRun(["--version"]), false);
  // Streamed outputs run on one thread: no workers, whose compilers cost the memory.
  assert.equal(longRun(["seal", big, "-o", "-"]), false);
  assert.equal(longRun(["open", big, "--output", "/dev/null"]), false);
  assert.equal(longRun(["open", big, "-o-"]), false);
  assert.equal(longRun(["open", "s3://bucket/model.tseal", "-o", "-"]), true);
  assert.equal(longRun(["open", "https://example.invalid/m.tseal"]), true);
  assert.equal(longRun(["seal", justUnder, "-o", join(dir, "out")]), false);
  assert.equal(longRun(["seal", join(box.dir, "small.tseal")]), false);
  assert.equal(longRun(["seal", join(dir, "missing"), "-"]), false);
  assert.equal(longRun(["seal", dir]), false, "a directory is not an input's length");
  assert.equal(longRun(["seal", `--recipient=${big}`]), false, "an option token is not stat'ed");
  // Operands that cannot be stat'ed (a recipient string, a name too long, a path under a file,
  // no permission) are not long runs, and never an error here: the command reports them.
  assert.equal(longRun(["seal", big, "-r", `tseal1pq1${"q".repeat(5000)}`, "-o", "-"]), false);
  assert.equal(longRun(["seal", `tseal1pq1${"q".repeat(5000)}`]), false);
  assert.equal(longRun(["seal", join(big, "under-a-file")]), false);
  assert.equal(longRun(["open", big, "-o", `${"x".repeat(5000)}`]), true);
  // A lean compile never reads the cache, which was made under the other flags.
  assert.equal(cacheUse(join(DIST_CLI, "seal.cjs"), true), "none");
  assert.equal(cacheUse(join(DIST_CLI, "seal.cjs")), "accepted");
});

test("the one-command bundles are ASCII: code-cache.ts reads them as latin1", () => {
  for (const name of [...FAST_COMMANDS, "version"]) {
    const bytes = readFileSync(join(DIST_CLI, `${name}.cjs`));
    const at = bytes.findIndex((b) => b > 0x7f);
    assert.equal(at, -1, `${name}.cjs has a non-ASCII byte at ${at}`);
    // What the bin compiles is what a UTF-8 read gives (the latin1 read changes nothing).
    assert.equal(bytes.toString("latin1"), bytes.toString("utf8"), name);
  }
});

test("no cache: the command runs as with one", () => {
  // A copy is a new file: the build's cache (for dist/cli) is not beside it.
  assert.equal(cacheUse(copied("inspect")), "none");
  const r = run(join(COPY, "tensorseal.cjs"), inspectLine);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r, run(CLI, inspectLine));
});

test("a cache is made for its file and ignored once the file changes, even at the same length", () => {
  const bundle = copied("inspect");
  const made = run(join(COPY, "tensorseal.cjs"), inspectLine, {
    TENSORSEAL_CODE_CACHE_OUT: cacheFile(bundle),
  });
  assert.equal(made.status, 0, made.stderr);
  assert.equal(cacheUse(bundle), "accepted");
  // Same length, other code: a label inspect prints. A cache tied to the length alone
  // (all V8 checks) would run the compiled code of the old text.
  const text = readFileSync(bundle, "utf8");
  const edited = text.replace("`content type:  ", "`CONTENT TYPE:  ");
  assert.notEqual(edited, text, "the bundle prints the label this test edits");
  assert.equal(edited.length, text.length);
  writeFileSync(bundle, edited);
  assert.equal(cacheUse(bundle), "none");
  const r = run(join(COPY, "tensorseal.cjs"), inspectLine);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(
    r.stdout,
    run(CLI, inspectLine).stdout.replace("content type:  ", "CONTENT TYPE:  "),
  );
});

test("another bundle's cache under this file's header is rejected by V8, and ignored", () => {
  const bundle = copied("inspect");
  copyFileSync(join(DIST_CLI, "inspect.cjs"), bundle); // as built, whatever a test before did
  const other = copied("seal");
  run(join(COPY, "tensorseal.cjs"), ["seal", "small.bin", "-o", "x.tseal", "--force"], {
    TENSORSEAL_CODE_CACHE_OUT: cacheFile(other),
  });
  run(join(COPY, "tensorseal.cjs"), inspectLine, { TENSORSEAL_CODE_CACHE_OUT: cacheFile(bundle) });
  const own = readFileSync(cacheFile(bundle));
  const header = own.subarray(0, own.indexOf(10) + 1);
  const foreign = readFileSync(cacheFile(other));
  writeFileSync(
    cacheFile(bundle),
    Buffer.concat([header, foreign.subarray(foreign.indexOf(10) + 1)]),
  );
  assert.equal(cacheUse(bundle), "rejected");
  const r = run(join(COPY, "tensorseal.cjs"), inspectLine);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r, run(CLI, inspectLine));
  // A cache whose header names another Node build is not handed to V8 at all.
  writeFileSync(
    cacheFile(bundle),
    Buffer.from(own.toString("latin1").replace(process.version, "v0.0.0"), "latin1"),
  );
  assert.equal(cacheUse(bundle), "none");
  assert.deepEqual(run(join(COPY, "tensorseal.cjs"), inspectLine), run(CLI, inspectLine));
});

test("a command loads only the Node built-ins it calls", () => {
  const preload = join(box.dir, "builtins.cjs");
  const out = join(box.dir, "builtins.txt");
  writeFileSync(
    preload,
    `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(out)}, process.moduleLoadList.join("\\n")));`,
  );
  const loaded = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(process.execPath, ["-r", preload, ...args], {
      env: { ...box.env, ...env },
      cwd: box.dir,
      stdio: "ignore",
    });
    assert.equal(r.status, 0, args.join(" "));
    return new Set(readFileSync(out, "utf8").split("\n"));
  };
  // What Node loads for itself, for crypto and for fs/promises differs by version (Node 24's
  // internals load os): only what a run loads beyond that counts.
  writeFileSync(join(box.dir, "empty.cjs"), "");
  writeFileSync(
    join(box.dir, "needs.cjs"),
    'require("node:crypto"); require("node:fs/promises"); process.stdout.write("");',
  );
  const extra = (
    args: string[],
    builtins: string[],
    base = "empty.cjs",
    env: NodeJS.ProcessEnv = {},
  ) => {
    const node = loaded([base]);
    const seen = loaded([CLI, ...args], env);
    return builtins.filter((m) => seen.has(`NativeModule ${m}`) && !node.has(`NativeModule ${m}`));
  };
  // inspect reads the header (node:fs) and checks its slots (noble's SHA-256): no node:crypto,
  // no fs/promises, nothing heavy (issue 11: each was milliseconds of its start-up).
  // (node:os is not among them: the bin counts the cores to size the thread pool, pool-size.ts.)
  const heavy = ["tty", "http", "https", "tls", "worker_threads", "child_process"];
  assert.deepEqual(extra(inspectLine, heavy, "needs.cjs"), [], "inspect");
  assert.deepEqual(extra(inspectLine, ["crypto", "fs/promises"]), [], "inspect: crypto");
  // Without the native addon a seal encrypts with node:crypto: the probe sees it loaded.
  const seal = ["seal", "small.bin", "-o", "probe.tseal", "--force"];
  const noAddon = { TENSORSEAL_NATIVE: "0", TENSORSEAL_REQUIRE_ALL: "0" };
  assert.deepEqual(extra(seal, ["crypto"], "empty.cjs", noAddon), ["crypto"], "the probe works");
  // With it, a keystore seal, open and verify of a small file take every primitive from the
  // addon (src/format/primitives.ts): node:crypto is never loaded, 41 internal modules on
  // Node 24 (issue 11). CI builds the addon (TENSORSEAL_REQUIRE_ALL=1), so this runs there.
  // So do a seal to an X25519 recipient and an open with its identity (HPKE, hpke-node.ts).
  // CI requires the addon (TENSORSEAL_REQUIRE_ALL=1): there this block must run, not skip.
  if (process.env["TENSORSEAL_REQUIRE_ALL"] === "1") assert.equal(primitivesBackend, "native");
  if (primitivesBackend === "native") {
    assert.equal(box.run(["keygen", "-o", "probe.key"]).status, 0);
    const key = readFileSync(join(box.dir, "probe.key"), "utf8");
    const recipient = /^# recipient: (\S+)$/m.exec(key)![1]!;
    const runs = [
      seal,
      ["open", "small.tseal", "-o", "probe2.bin", "--force"],
      ["verify", "small.tseal"],
      ["seal", "small.bin", "-r", recipient, "-o", "probe-r.tseal", "--force"],
      ["open", "probe-r.tseal", "-i", "probe.key", "-o", "probe-r.bin", "--force"],
    ];
    for (const args of runs) {
      assert.deepEqual(extra(args, ["crypto"]), [], `${args.join(" ")}: node:crypto`);
    }
    assert.deepEqual(
      readFileSync(join(box.dir, "probe-r.bin")),
      readFileSync(join(box.dir, "small.bin")),
    );
  }
  // The keystore's lock files go by unlink, not rm(), whose first call loads Node's rimraf.
  assert.deepEqual(extra(seal, ["internal/fs/rimraf"]), [], "seal: rimraf");
  // Small files' calls are synchronous or node:fs callbacks (docs/DECISIONS.md): no fs/promises.
  const open = ["open", "small.tseal", "-o", "probe.bin", "--force"];
  assert.deepEqual(extra(seal, ["fs/promises"]), [], "seal: fs/promises");
  assert.deepEqual(extra(open, ["fs/promises"]), [], "open: fs/promises");
  assert.deepEqual(extra(["--version"], ["crypto", "fs/promises", ...heavy]), [], "--version");
});

test("seal and open to a file create neither process.stdout nor process.stderr, nor a timer", () => {
  const preload = join(box.dir, "stdio-probe.cjs");
  const out = join(box.dir, "stdio-probe.txt");
  // Wraps Node's lazy getters before the CLI runs: the CLI's own hooks (stdio.ts) keep them.
  writeFileSync(
    preload,
    `const used = [];
     // The engine's progress timer runs only for a progress line someone sees.
     const setInterval0 = global.setInterval;
     global.setInterval = (...a) => { used.push("setInterval"); return setInterval0(...a); };
     for (const name of ["stdout", "stderr"]) {
       const d = Object.getOwnPropertyDescriptor(process, name);
       Object.defineProperty(process, name, { ...d, get() { used.push(name); return d.get.call(process); } });
     }
     process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(out)}, [...new Set(used)].join(",")));`,
  );
  const probe = (args: string[], stdio: "pipe" | "file") => {
    const err = join(box.dir, "stdio-probe.err");
    const r = spawnSync(
      "sh",
      [
        "-c",
        stdio === "file" ? '"$@" 2>"$E"' : '"$@"',
        "sh",
        process.execPath,
        "-r",
        preload,
        CLI,
        ...args,
      ],
      { env: { ...box.env, E: err }, cwd: box.dir, encoding: "utf8" },
    );
    assert.equal(r.status, 0, `${args.join(" ")}: ${r.stderr}`);
    return {
      used: readFileSync(out, "utf8"),
      stdout: r.stdout,
      stderr: stdio === "file" ? readFileSync(err, "utf8") : r.stderr,
    };
  };
  const seal = ["seal", "small.bin", "-o", "probe.tseal", "--force"];
  const open = ["open", "small.tseal", "-o", "probe.bin", "--force"];
  for (const stdio of ["file", "pipe"] as const) {
    assert.deepEqual(probe(seal, stdio), {
      used: "",
      stdout: "",
      stderr: "tensorseal: sealed small.bin -> probe.tseal for kek:default\n",
    });
    assert.deepEqual(probe(open, stdio), {
      used: "",
      stdout: "",
      stderr: "tensorseal: opened small.tseal -> probe.bin\n",
    });
  }
  // Printed lines go to the descriptor without the stream too, all of them, in order.
  const printed = probe(inspectLine, "pipe");
  assert.equal(printed.used, "", "inspect to a pipe");
  assert.match(printed.stdout, /^file: +small\.tseal\nformat: +tseal v1, [^\n]+\n/);
  const streamed = probe(["seal", "small.bin", "-o", "-"], "pipe");
  assert.equal(streamed.used, "stdout", "the probe sees a command that creates the stream");
  // stdout's error handler is attached when it is created: ENOSPC is one line and exit 7.
  const full = spawnSync(
    "sh",
    ["-c", '"$0" "$1" inspect small.tseal >/dev/full', process.execPath, CLI],
    {
      env: box.env,
      cwd: box.dir,
      encoding: "utf8",
    },
  );
  assert.equal(full.status, 7, full.stderr);
  assert.equal(full.stderr, "tensorseal: error: cannot write: ENOSPC\n");
});

test("a cache that others than the bundle's owner could write is not used", () => {
  const bundle = copied("inspect");
  copyFileSync(join(DIST_CLI, "inspect.cjs"), bundle);
  run(join(COPY, "tensorseal.cjs"), inspectLine, { TENSORSEAL_CODE_CACHE_OUT: cacheFile(bundle) });
  assert.equal(cacheUse(bundle), "accepted");
  chmodSync(cacheFile(bundle), 0o664);
  assert.equal(cacheUse(bundle), "none");
  assert.deepEqual(run(join(COPY, "tensorseal.cjs"), inspectLine), run(CLI, inspectLine));
});
