/**
 * The package as users get it: `npm pack`, the tarball installed into an empty folder (from
 * npm's cache, else the registry), then every TypeScript example of docs/LIBRARY.md and
 * docs/INTEGRATIONS.md compiled with `tsc --strict` against the installed declarations and run
 * in order, as one session, against a key service on loopback. The examples are read from the
 * docs, so the docs cannot drift from what runs. Skipped only when npm cannot install (offline,
 * empty cache), and never with TENSORSEAL_REQUIRE_ALL=1.
 *
 * Install scripts are skipped, then only tensorseal's own is run (`npm rebuild tensorseal`):
 * the library needs neither better-sqlite3 nor pkcs11js built, and this shows it.
 * onnxruntime-node (300 MB, the caller's optional peer) is linked from this repository.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { sandbox } from "../cli/helpers.js";
import { buildSafetensors, floats } from "../integrations/helpers.js";
import { addModel } from "../integrations/onnx-model.js";
import { bearer, type CliService, cliService, token } from "../service/helpers.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const DOCS = ["docs/LIBRARY.md", "docs/INTEGRATIONS.md"];
const requireAll = process.env.TENSORSEAL_REQUIRE_ALL === "1";
const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));

interface Example {
  /** doc and the heading above the block, e.g. "LIBRARY.md: Errors". */
  label: string;
  file: string;
  code: string;
}

/** Every ```ts block of the docs, in order, named after the nearest heading above it. */
function examples(): Example[] {
  const out: Example[] = [];
  for (const doc of DOCS) {
    let heading = "";
    let block: string[] | null = null;
    for (const line of readFileSync(join(REPO, doc), "utf8").split("\n")) {
      if (block) {
        if (line.startsWith("```")) {
          const n = String(out.length + 1).padStart(2, "0");
          const label = `${doc.replace("docs/", "")}: ${heading}`;
          out.push({ label, file: `ex${n}`, code: `${block.join("\n")}\n` });
          block = null;
        } else block.push(line);
      } else if (line === "```ts") block = [];
      else if (line.startsWith("#")) heading = line.replace(/^#+\s*/, "");
    }
  }
  return out;
}

interface Run {
  status: number;
  stdout: string;
  /** stdout and stderr as they came. */
  out: string;
}

/** Runs a command without blocking this process (the key service answers from it). */
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolveRun) => {
    const c = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let stdout = "";
    c.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      stdout += d.toString();
    });
    c.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    c.on("error", (e) => resolveRun({ status: -1, stdout, out: `${cmd}: ${e.message}` }));
    c.on("close", (status) => resolveRun({ status: status ?? -1, stdout, out }));
  });
}

/** npm as the user runs it (their npmrc: registry, CA), minus audit and funding requests. */
const npmEnv: NodeJS.ProcessEnv = {
  ...process.env,
  npm_config_audit: "false",
  npm_config_fund: "false",
  npm_config_update_notifier: "false",
};

const EXAMPLES = examples();

describe("the packed package, as a user installs it", () => {
  let tmp: string;
  let consumer: string;
  let work: string;
  let skip: string | false = false;
  let packed: string[] = [];
  let install = "";
  let svc: CliService | null = null;
  const sb = sandbox();
  let exampleEnv: NodeJS.ProcessEnv = {};

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "tensorseal-pack-"));
    consumer = join(tmp, "consumer");
    work = join(consumer, "work");
    mkdirSync(work, { recursive: true });
    const env = npmEnv;

    const p = await run("npm", ["pack", "--json", "--pack-destination", tmp], REPO, env);
    assert.equal(p.status, 0, `npm pack failed:\n${p.out}`);
    const info = JSON.parse(p.stdout);
    packed = info[0].files.map((f: { path: string }) => f.path);

    writeFileSync(
      join(consumer, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
    const i = await run(
      "npm",
      [
        "install",
        "--prefer-offline",
        "--ignore-scripts",
        "--no-package-lock",
        join(tmp, info[0].filename),
        `@types/node@${pkg.devDependencies["@types/node"]}`,
      ],
      consumer,
      env,
    );
    install = i.out;
    if (i.status !== 0) {
      const why = `npm could not install the packed tarball (offline with an empty cache?):\n${i.out}`;
      if (requireAll) assert.fail(`TENSORSEAL_REQUIRE_ALL=1 but ${why}`);
      skip = why;
      return;
    }
    const rebuild = await run("npm", ["rebuild", "tensorseal"], consumer, env);
    assert.equal(rebuild.status, 0, rebuild.out);
    symlinkSync(
      join(REPO, "node_modules", "onnxruntime-node"),
      join(consumer, "node_modules", "onnxruntime-node"),
    );

    mkdirSync(join(consumer, "examples"));
    for (const ex of EXAMPLES) writeFileSync(join(consumer, "examples", `${ex.file}.ts`), ex.code);
    const compilerOptions = {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      lib: ["ES2022"],
      types: ["node"],
      strict: true,
    };
    // The examples as `tsc --init` sets a project up (skipLibCheck: onnxruntime's own
    // declarations need the DOM library).
    writeFileSync(
      join(consumer, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          ...compilerOptions,
          skipLibCheck: true,
          rootDir: "examples",
          outDir: "out",
        },
        include: ["examples"],
      }),
    );
    // The main entry's declarations checked in full: they must need nothing but @types/node.
    mkdirSync(join(consumer, "check"));
    writeFileSync(join(consumer, "check", "entry.ts"), 'export * from "tensorseal";\n');
    writeFileSync(
      join(consumer, "tsconfig.check.json"),
      JSON.stringify({
        compilerOptions: { ...compilerOptions, skipLibCheck: false, noEmit: true },
        include: ["check"],
      }),
    );

    const weights = floats([1, 2, 3, 4]);
    const model = buildSafetensors(
      [{ name: "lm_head.weight", dtype: "F32", shape: [2, 2], data: weights }],
      { format: "pt" },
    );
    writeFileSync(join(work, "model.safetensors"), model);
    writeFileSync(join(work, "model.onnx"), addModel());
    mkdirSync(join(work, "tiny-model"));
    writeFileSync(join(work, "tiny-model", "config.json"), '{"model_type":"demo"}\n');
    writeFileSync(join(work, "tiny-model", "model.safetensors"), model);

    svc = await cliService(sb);
    const admin = await token(svc.db, "admin");
    const key = await svc.app.inject({
      method: "POST",
      url: "/v1/keys",
      headers: bearer(admin),
      payload: { name: "models" },
    });
    assert.equal(key.statusCode, 200, key.body);
    exampleEnv = {
      PATH: process.env.PATH,
      HOME: tmp,
      TENSORSEAL_HOME: join(tmp, "home"),
      TENSORSEAL_KEYSTORE_PASSPHRASE: randomBytes(12).toString("hex"),
      TENSORSEAL_PASSPHRASE: randomBytes(12).toString("hex"),
      ...svc.env,
      TENSORSEAL_SERVER_TOKEN: await token(svc.db, "wrap,unwrap"),
      ...(requireAll ? { TENSORSEAL_REQUIRE_ALL: "1" } : {}),
    };
  });

  after(async () => {
    await svc?.close();
    sb.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test("the tarball holds both entries with types, the addon's sources and the docs; no tests or TS sources", (t) => {
    if (skip) return t.skip(skip);
    for (const f of [
      "dist/src/index.js",
      "dist/src/index.d.ts",
      "dist/src/onnx.js",
      "dist/src/onnx.d.ts",
      "dist/cli/tensorseal.cjs",
      "dist/cli/main.js",
      "dist/cli/seal.cjs",
      "binding.gyp",
      "native/tseal_gcm.cc",
      "native/tseal_fs.cc",
      "native/tseal_prim.cc",
      "native/tseal_napi.h",
      "scripts/build-native.mjs",
      "docs/LIBRARY.md",
      "spec/FORMAT.md",
    ]) {
      assert.ok(packed.includes(f), `${f} is missing from the tarball`);
    }
    const stray = packed.filter(
      (f) => f.startsWith("dist/test/") || f.startsWith("src/") || f.endsWith(".map"),
    );
    assert.deepEqual(stray, []);
  });

  test("a fresh install prints no EBADENGINE on Node >= 22, and builds the native addon", (t) => {
    if (skip) return t.skip(skip);
    const major = Number(process.versions.node.split(".")[0]);
    // On Node 20 (end of life) Fastify's cookie dependency declares node >= 22 (docs/NODE.md).
    if (major >= 22) assert.doesNotMatch(install, /EBADENGINE/, install);
    const addon = join(consumer, "node_modules/tensorseal/build/Release/tseal_gcm.node");
    if (requireAll) assert.ok(existsSync(addon), "npm rebuild tensorseal built no addon");
  });

  test("only the exported entries can be imported; the CLI runs from the package", async (t) => {
    if (skip) return t.skip(skip);
    const deep = await run(
      process.execPath,
      ["--input-type=module", "-e", 'await import("tensorseal/dist/src/engine/index.js")'],
      consumer,
      exampleEnv,
    );
    assert.notEqual(deep.status, 0);
    assert.match(deep.out, /ERR_PACKAGE_PATH_NOT_EXPORTED/);
    const cli = await run(
      join(consumer, "node_modules", ".bin", "tensorseal"),
      ["--version"],
      work,
      exampleEnv,
    );
    assert.equal(cli.status, 0, cli.out);
    assert.equal(cli.stdout.trim(), pkg.version);
  });

  const tsc = (project: string) =>
    run(
      process.execPath,
      [join(REPO, "node_modules", "typescript", "bin", "tsc"), "-p", project],
      consumer,
      exampleEnv,
    );

  test("the main entry's declarations type-check in full (skipLibCheck off) with only @types/node", async (t) => {
    if (skip) return t.skip(skip);
    const r = await tsc("tsconfig.check.json");
    assert.equal(r.status, 0, r.out);
  });

  test("the docs' TypeScript examples compile with tsc --strict against the installed types", async (t) => {
    if (skip) return t.skip(skip);
    assert.ok(EXAMPLES.length >= 8, `only ${EXAMPLES.length} ts examples found in ${DOCS}`);
    const r = await tsc("tsconfig.json");
    assert.equal(r.status, 0, r.out);
  });

  for (const ex of EXAMPLES) {
    test(`runs ${ex.label}`, async (t) => {
      if (skip) return t.skip(skip);
      const js = join(consumer, "out", `${ex.file}.js`);
      assert.ok(existsSync(js), "the examples did not compile");
      const r = await run(process.execPath, [js], work, exampleEnv);
      assert.equal(r.status, 0, `${ex.label} failed:\n${ex.code}\n--- output ---\n${r.out}`);
      if (r.out.trim()) t.diagnostic(r.out.trim());
    });
  }
});
