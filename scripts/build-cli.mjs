// Bundles the CLI (src/cli/main.ts) into dist/cli: what `tensorseal` (package.json "bin") runs.
// Issue #11: start-up time is mostly the cost of loading files (about 0.3–1 ms of CPU each), so
// the CLI ships as a few ES module files instead of ~80. Code splitting keeps it lazy: every
// `await import()` in the source (a command's registration, its action, a lazily loaded helper)
// becomes its own chunk, loaded only when that code runs, and modules shared by several of them
// land in shared chunks. Nothing here lists our modules: esbuild follows the imports, so a new
// command or module is picked up by the next build.
//
// Kept out of the bundle, loaded from node_modules at run time as before: every package but the
// small pure-JS ones on the start-up paths (INLINE). The others hold native addons
// (better-sqlite3, pkcs11js, onnxruntime-node), wasm (Cedar), worker or transport files found by
// path (pino, under Fastify), or are large and loaded only by the commands that need them (the
// AWS SDK, pg): bundling them would gain nothing and risks breaking them.
//
// A source file that finds a sibling file through `import.meta.url` (the engine's worker, the
// native addon, the exec guardian, the console's static files) must still find it once bundled:
// its `import.meta.url` is rewritten to the URL of its own tsc output in dist/src, which ships
// beside the bundle (the library entry), so those paths resolve exactly as they did.
//
// The commands users run most (src/cli/fast-commands.ts) also ship as one CommonJS file each,
// dist/cli/NAME.cjs from src/cli/fast/NAME.ts, everything that command can reach inlined (a
// lazily loaded module stays lazy: esbuild wraps it in a function called on first use): one file
// to read and compile, and no ES module loader, which on Node 20 costs more than all of it.
// `tensorseal` is dist/cli/tensorseal.cjs (src/cli/bin.ts): it loads one of those, or the split
// ES module bundle above (dist/cli/main.js) for every other command line. Packages stay
// external there too, loaded by require() when the code that imports them first runs; one that
// has no CommonJS entry must be bundled instead (CJS_INLINE), or the build fails.
//
// Writes dist/cli.meta.json (outside the package): which source modules each output file holds,
// for test/cli/startup-modules.test.ts to count what a run loads. Run by `npm run build` after
// tsc. Builds into a temp dir, then swaps it in.
import { readFileSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist", "cli");
const tmp = `${out}.tmp-${process.pid}`;
const src = join(root, "src");
/** The entry users run (package.json "bin"): picks a one-command bundle or the whole CLI. */
const BIN = join(src, "cli", "bin.ts");

/** Packages bundled into the CLI: pure JS, no files found by path, on the start-up paths. */
const INLINE = new Set(["commander", "shamir-secret-sharing"]);
/**
 * Also bundled into the CommonJS files: pure JS with no CommonJS entry to require(), and the
 * HPKE stacks of a recipient or identity (seal -r, open -i): required from node_modules they
 * were ~70 files and ~25 ms of a 1 KiB seal's start-up. A bundled module that is only imported
 * lazily stays lazy (compiled only when it runs): X-Wing's KEM (src/keys/hpke-xwing.ts). The
 * ML-KEM under it (@noble/post-quantum, @noble/curves) is imported dynamically and stays in
 * node_modules: its ~63 KB would be read at every start of every command (issue 11).
 */
const CJS_INLINE = new Set([...INLINE, "@scure/base", "@noble/hashes", "hpke"]);

/** The package a bare specifier names ("@scope/name/sub" -> "@scope/name"). */
function packageOf(spec) {
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** Every package but `inline` stays an import of node_modules, resolved at run time. */
function externals(inline, { commonjs = false } = {}) {
  const requireFromRoot = createRequire(join(root, "package.json"));
  return {
    name: "tensorseal-externals",
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith("node:")) return { path: args.path, external: true };
        if (inline.has(packageOf(args.path))) return undefined;
        // In a CommonJS file a static import becomes require(): the package must have a
        // CommonJS entry. require() of an ES module works on Node >= 20.19 but fails for one
        // with top-level await, and is not what the package's authors ship for require().
        if (commonjs && args.kind === "import-statement" && !requirable(requireFromRoot, args.path))
          return {
            errors: [{ text: `${args.path} has no CommonJS entry: add it to CJS_INLINE` }],
          };
        return { path: args.path, external: true };
      });
    },
  };
}

/** Whether `spec` resolves to a CommonJS file through require(). */
function requirable(req, spec) {
  let file;
  try {
    file = req.resolve(spec);
  } catch {
    return false;
  }
  if (file.endsWith(".cjs") || file.endsWith(".node") || file.endsWith(".json")) return true;
  if (file.endsWith(".mjs")) return false;
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      return JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).type !== "module";
    } catch (e) {
      if (e.code !== "ENOENT") throw e;
    }
  }
  return true;
}

/**
 * `import.meta.url` in src/X/Y.ts -> the URL of dist/src/X/Y.js (see above). In the CommonJS
 * files (`commonjs`) also `import("pkg")` of a package or built-in left external ->
 * `__tsealImport("pkg")` (the banner below): bin.ts runs those files as vm scripts with their V8
 * code cache (src/cli/code-cache.ts), where a bare `import()` throws without a Node flag, and
 * passes its own `import()` in, which resolves from the same folder.
 */
function sourceRewrites({ commonjs = false } = {}) {
  const dynamicImport = /\bimport\(\s*(["'])([^"'./][^"']*)\1\s*\)/g;
  return {
    name: "tensorseal-source-rewrites",
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        // bin.ts finds the other bundles beside itself: its import.meta.url stays its own.
        if (!args.path.startsWith(src + sep) || args.path === BIN) return undefined;
        const text = await readFile(args.path, "utf8");
        // import.meta.dirname, .filename and .resolve() would name the bundle's folder, not the
        // module's: refuse them here rather than ship a path that resolves elsewhere.
        const other = /import\.meta\.(?!url\b)\w+/.exec(text);
        if (other) {
          return {
            errors: [{ text: `${other[0]}: not supported in the CLI bundle, use import.meta.url` }],
          };
        }
        let code = text;
        if (code.includes("import.meta.url")) {
          const compiled = join(root, "dist", relative(root, args.path)).replace(/\.ts$/, ".js");
          const rel = relative(out, compiled).split(sep).join("/");
          code = code.replaceAll(
            "import.meta.url",
            `new URL(${JSON.stringify(rel)}, import.meta.url).href`,
          );
        }
        if (commonjs)
          code = code.replace(dynamicImport, (call, q, spec) =>
            CJS_INLINE.has(packageOf(spec)) ? call : `__tsealImport(${q}${spec}${q})`,
          );
        return code === text ? undefined : { contents: code, loader: "ts" };
      });
    },
  };
}

/**
 * Commander requires node:child_process at load, for executable subcommands (a command run as
 * its own program), which this CLI has none of; loading it pulls in net, dgram, streams and
 * more: ~40 of Node's internal modules on every run. Commander gets it on first use instead.
 */
const lazyChildProcess = {
  name: "tensorseal-lazy-child-process",
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      args.importer.includes(`${sep}node_modules${sep}commander${sep}`)
        ? { path: "child_process", namespace: "lazy-child-process" }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "lazy-child-process" }, () => ({
      contents:
        'module.exports = { spawn: (...args) => require("node:child_process").spawn(...args) };',
      loader: "js",
    }));
  },
};

/**
 * Node's built-ins that cost a short command most to load (crypto alone is ~36 of Node's internal
 * modules, fs/promises brings readline, stream a dozen more) and that are not loaded already when
 * Node starts: in the CommonJS files each becomes an object whose properties require() it on
 * first use, so a run loads only the built-ins its code calls. A static import would load them
 * all when the module that names them initializes, whether or not the command uses them.
 * The export names are those of the building Node; one the running Node lacks reads as
 * undefined, as a require() of it would.
 */
const LAZY_BUILTINS = [
  "child_process",
  "crypto",
  "fs/promises",
  "http",
  "https",
  "net",
  "os",
  "perf_hooks",
  "stream",
  "stream/promises",
  "timers/promises",
  "tls",
  "tty",
  "worker_threads",
];
const lazyBuiltins = {
  name: "tensorseal-lazy-builtins",
  setup(b) {
    const names = new Set(LAZY_BUILTINS.flatMap((n) => [n, `node:${n}`]));
    const requireHere = createRequire(import.meta.url);
    b.onResolve({ filter: /^[a-z]/ }, (args) =>
      names.has(args.path) && args.namespace !== "lazy-builtin"
        ? { path: args.path.replace(/^node:/, ""), namespace: "lazy-builtin" }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, (args) => {
      const spec = JSON.stringify(`node:${args.path}`);
      const getters = Object.keys(requireHere(`node:${args.path}`))
        .filter((k) => k !== "default")
        .map((k) => `  get ${JSON.stringify(k)}() { return load()[${JSON.stringify(k)}]; },`);
      // The getters sit on the prototype: esbuild's __toESM (one per importing module) copies
      // an import's own properties, and copying ~80 getters at each of ~20 sites costs time.
      return {
        contents: [
          "let m;",
          `const load = () => (m ??= require(${spec}));`,
          `module.exports = Object.create({\n${getters.join("\n")}\n});`,
        ].join("\n"),
        loader: "js",
      };
    });
  },
};

await rm(tmp, { recursive: true, force: true });
await mkdir(tmp, { recursive: true });
const result = await build({
  entryPoints: { main: join(src, "cli", "main.ts") },
  outdir: tmp,
  // Flat: the entry and every chunk in one folder, so the rewritten URLs above hold for all.
  chunkNames: "[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // Inlined CommonJS (commander) calls require() for node's built-ins.
  banner: {
    js: 'import { createRequire as __tsealCreateRequire } from "node:module";\nconst require = __tsealCreateRequire(import.meta.url);',
  },
  plugins: [lazyChildProcess, externals(INLINE), sourceRewrites()],
  absWorkingDir: root,
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});
await chmod(join(tmp, "main.js"), 0o755);

// The one-command CommonJS bundles (src/cli/fast-commands.ts), and bin.ts that picks one.
const { FAST_COMMANDS } = await import(
  pathToFileURL(join(root, "dist", "src", "cli", "fast-commands.js")).href
);
const fast = [...FAST_COMMANDS, "version"];
const fastSources = (await readdir(join(src, "cli", "fast"))).map((f) => f.replace(/\.ts$/, ""));
const unlisted = fastSources.filter((f) => !fast.includes(f));
const missing = fast.filter((f) => !fastSources.includes(f));
if (unlisted.length > 0 || missing.length > 0)
  throw new Error(
    `src/cli/fast/ and FAST_COMMANDS differ: unlisted ${unlisted}, missing ${missing}`,
  );
/** bin.ts's import of the whole CLI stays an import of dist/cli/main.js (built above). */
const wholeCli = {
  name: "tensorseal-whole-cli",
  setup(b) {
    b.onResolve({ filter: /^\.\/main\.js$/ }, (args) =>
      args.importer === BIN ? { path: args.path, external: true } : undefined,
    );
  },
};
const commonjs = await build({
  entryPoints: {
    tensorseal: BIN,
    ...Object.fromEntries(fast.map((f) => [f, join(src, "cli", "fast", `${f}.ts`)])),
  },
  outdir: tmp,
  outExtension: { ".js": ".cjs" },
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  // import.meta.url (rewritten above to a URL relative to it) is the bundle file's own URL.
  define: { "import.meta.url": "__tsealModuleUrl" },
  // Strict mode first (as ES modules are): a banner before esbuild's own "use strict" would end
  // the directive prologue and leave the whole file sloppy.
  banner: {
    js: [
      '"use strict";',
      'var __tsealModuleUrl = require("node:url").pathToFileURL(__filename).href;',
      // bin.ts's import() when it runs this file (code-cache.ts), else this file's own.
      'var __tsealImport = typeof __tsealDynamicImport === "function" ? __tsealDynamicImport : (s) => import(s);',
    ].join("\n"),
  },
  plugins: [
    wholeCli,
    lazyChildProcess,
    lazyBuiltins,
    externals(CJS_INLINE, { commonjs: true }),
    sourceRewrites({ commonjs: true }),
  ],
  absWorkingDir: root,
  metafile: true,
  legalComments: "none",
  // Less source to read and compile on every start (~1 ms of a 1 KiB seal's CPU, issue 11);
  // names are kept, so stack traces still name functions.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: "warning",
});
await chmod(join(tmp, "tensorseal.cjs"), 0o755);
// src/cli/code-cache.ts reads the one-command files as latin1 (no UTF-8 decoding, a one-byte
// source string): they must be ASCII. esbuild escapes non-ASCII in code (charset "ascii"), but
// copies the comments it keeps as they are.
for (const f of fast) {
  const text = await readFile(join(tmp, `${f}.cjs`), "utf8");
  const at = text.search(/[^\x00-\x7f]/);
  if (at >= 0) {
    const line = text.slice(0, at).split("\n").length;
    throw new Error(
      `dist/cli/${f}.cjs:${line}: a non-ASCII character (in a comment of the source?): ` +
        `write it in ASCII (the CLI reads this file as latin1): ${text.split("\n")[line - 1].trim()}`,
    );
  }
}

const modules = {};
for (const [file, o] of Object.entries({
  ...result.metafile.outputs,
  ...commonjs.metafile.outputs,
})) {
  modules[relative(tmp, join(root, file)).split(sep).join("/")] = Object.keys(o.inputs);
}
await rm(out, { recursive: true, force: true });
await rename(tmp, out);
await writeFile(join(root, "dist", "cli.meta.json"), `${JSON.stringify(modules, null, 1)}\n`);
