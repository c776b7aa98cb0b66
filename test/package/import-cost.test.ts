/**
 * `import "tensorseal"` stays cheap: it loads the format, engine, keys and integration layers
 * and a few small pure-JS packages, never the key service, its database drivers, Cedar, the
 * AWS SDK, PKCS#11, onnxruntime or the CLI (docs/LIBRARY.md). Each import runs in a fresh
 * process that lists what it loaded (loaded-modules.ts).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { dirname, join, relative, resolve, sep } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "../../..");
const DIST_SRC = join(REPO, "dist", "src") + sep;

/** The only third-party packages the entry may load at import time. */
const ALLOWED = ["hpke", "@noble/hashes", "@scure/base", "shamir-secret-sharing"];

interface Loaded {
  files: string[];
  packages: string[];
  /** Our own modules, relative to dist/src. */
  own: string[];
}

function loaded(specifier: string): Loaded {
  const out = execFileSync(process.execPath, [join(HERE, "loaded-modules.js"), specifier], {
    cwd: REPO,
    encoding: "utf8",
  });
  const files: string[] = JSON.parse(out);
  const packages = new Set<string>();
  for (const f of files) {
    const m = /node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(
      f.slice(f.lastIndexOf("node_modules")),
    );
    if (m) packages.add(m[1]!.replace("\\", "/"));
  }
  const own = files.filter((f) => f.startsWith(DIST_SRC)).map((f) => relative(DIST_SRC, f));
  return { files, packages: [...packages].sort(), own };
}

test("the probe sees what an import loads (the key service loads Fastify, Kysely, pg, better-sqlite3)", () => {
  const svc = loaded(join(DIST_SRC, "service", "index.js"));
  for (const p of ["fastify", "kysely", "pg", "better-sqlite3"]) {
    assert.ok(svc.packages.includes(p), `${p} not seen in ${svc.packages.join(", ")}`);
  }
  assert.ok(svc.own.some((f) => f.startsWith(`service${sep}`)));
});

test('import "tensorseal" loads no server, provider, runtime or CLI code', () => {
  const lib = loaded("tensorseal");
  assert.ok(lib.own.includes("index.js"), "the package entry resolves to dist/src/index.js");
  const extra = lib.packages.filter((p) => !ALLOWED.includes(p));
  assert.deepEqual(extra, [], `import "tensorseal" loaded ${extra.join(", ")}`);
  const layers = new Set(lib.own.map((f) => f.split(sep)[0]));
  for (const layer of ["service", "cli"]) assert.ok(!layers.has(layer), `loaded src/${layer}`);
  const providers = lib.own.filter((f) => /^keys[\\/](kms|pkcs11)[\\/]/.test(f));
  assert.deepEqual(providers, [], "HSM/KMS providers load on first use only");
  // The engine's own AES-GCM addon is its fast path and loads with it; no other addon may.
  const ours = join(REPO, "build", "Release", "tseal_gcm.node");
  const addons = lib.files.filter((f) => f.endsWith(".node") && f !== ours);
  assert.deepEqual(addons, [], "native addons other than the engine's load on first use only");
});

test('import "tensorseal/onnx" does not load onnxruntime-node until a model is loaded', () => {
  const onnx = loaded("tensorseal/onnx");
  assert.ok(onnx.own.includes("onnx.js"));
  assert.ok(!onnx.packages.includes("onnxruntime-node"), onnx.packages.join(", "));
  assert.deepEqual(
    onnx.packages.filter((p) => !ALLOWED.includes(p)),
    [],
  );
});
