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
// Writes dist/cli.meta.json (outside the package): which source modules each output file holds,
// for test/cli/startup-modules.test.ts to count what a run loads. Run by `npm run build` after
// tsc. Builds into a temp dir, then swaps it in.
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist", "cli");
const tmp = `${out}.tmp-${process.pid}`;
const src = join(root, "src");

/** Packages bundled into the CLI: pure JS, no files found by path, on the start-up paths. */
const INLINE = new Set(["commander", "shamir-secret-sharing"]);

/** The package a bare specifier names ("@scope/name/sub" -> "@scope/name"). */
function packageOf(spec) {
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** Every package but INLINE stays an import of node_modules, resolved at run time. */
const externals = {
  name: "tensorseal-externals",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith("node:")) return { path: args.path, external: true };
      if (INLINE.has(packageOf(args.path))) return undefined;
      return { path: args.path, external: true };
    });
  },
};

/** `import.meta.url` in src/X/Y.ts -> the URL of dist/src/X/Y.js (see above). */
const moduleUrls = {
  name: "tensorseal-module-urls",
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (!args.path.startsWith(src + sep)) return undefined;
      const text = await readFile(args.path, "utf8");
      // import.meta.dirname, .filename and .resolve() would name the bundle's folder, not the
      // module's: refuse them here rather than ship a path that resolves elsewhere.
      const other = /import\.meta\.(?!url\b)\w+/.exec(text);
      if (other) {
        return {
          errors: [{ text: `${other[0]}: not supported in the CLI bundle, use import.meta.url` }],
        };
      }
      if (!text.includes("import.meta.url")) return undefined;
      const compiled = join(root, "dist", relative(root, args.path)).replace(/\.ts$/, ".js");
      const rel = relative(out, compiled).split(sep).join("/");
      const url = `new URL(${JSON.stringify(rel)}, import.meta.url).href`;
      return { contents: text.replaceAll("import.meta.url", url), loader: "ts" };
    });
  },
};

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
  plugins: [lazyChildProcess, externals, moduleUrls],
  absWorkingDir: root,
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});
await chmod(join(tmp, "main.js"), 0o755);
const modules = {};
for (const [file, o] of Object.entries(result.metafile.outputs)) {
  modules[relative(tmp, join(root, file)).split(sep).join("/")] = Object.keys(o.inputs);
}
await rm(out, { recursive: true, force: true });
await rename(tmp, out);
await writeFile(join(root, "dist", "cli.meta.json"), `${JSON.stringify(modules, null, 1)}\n`);
