/**
 * Runs a one-command CommonJS bundle (dist/cli/NAME.cjs) with the V8 code cache the build wrote
 * beside it (NAME.cjs.v8cache, scripts/build-code-cache.mjs), issue #11: compiling a 450 KB file
 * is the largest part of a short command's start-up. The cache is only read here; it is written
 * only when TENSORSEAL_CODE_CACHE_OUT names a file (the build's and install's own runs).
 *
 * The bundle runs as Node's CommonJS loader would run it: the same wrapper parameters, a Module
 * in require.cache, `require` resolved from the bundle's path, line numbers in stack traces those
 * of the file (the wrapper sits on a line of its own, lineOffset -1). Dynamic `import()` cannot
 * run from a vm script without a flag, so the build routes the bundles' few `import()` of
 * packages through `__tsealDynamicImport` (scripts/build-cli.mjs), passed in here: bin.ts's own
 * `import()`, which resolves from the same folder.
 *
 * A cache is used only for the file it was made from: its header names the Node build, and the
 * bundle's size, mtime and inode as the build saw them. V8 itself checks only the source's
 * length; hashing 450 KB on every run would cost more than the module loads it saves (3–7 ms
 * here), while any rewrite, copy or rebuild of the bundle changes its stat. A cache that does not
 * match, or that V8 rejects, is ignored: the bundle compiles as without one, only slower.
 *
 * The bundle is read as latin1, not UTF-8: the build makes these files ASCII only
 * (scripts/build-cli.mjs refuses a non-ASCII byte), so both read the same text, and latin1 skips
 * the UTF-8 decoding of ~0.5 MB (~0.5 ms a run). It also keeps the source a one-byte string:
 * before, one `§` in a comment made V8 hold the whole file as a two-byte one.
 */
import {
  type BigIntStats,
  closeSync,
  fstatSync,
  openSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import Module, { createRequire } from "node:module";
import { dirname } from "node:path";
import type * as V8 from "node:v8";
import { Script } from "node:vm";

const MAGIC = "tensorseal-v8-cache 1";

const WRAPPER =
  "(function (exports, require, module, __filename, __dirname, __tsealDynamicImport) {\n";

/** What the cache was made for: this Node and this exact file. */
function identity(s: BigIntStats): string {
  return [
    MAGIC,
    process.version,
    process.arch,
    process.versions.v8,
    s.size,
    s.mtimeNs,
    s.ino,
    s.dev,
  ].join(" ");
}

/**
 * The cache of `bundle` for one kind of run (`variant`, fast-commands.ts cacheVariant), else its
 * default one: V8 caches the functions a run compiled, and a seal to a recipient or an open
 * with an identity runs HPKE code a keystore run never does.
 */
export function cacheFile(bundle: string, variant?: string): string {
  return variant ? `${bundle}.${variant}.v8cache` : `${bundle}.v8cache`;
}

/**
 * The cache's V8 data if its header names this Node and this file, else undefined. A cache is
 * code (docs/DECISIONS.md): it is used only where no one could write it who could not write the
 * bundle, i.e. owned by the bundle's owner and not group- or world-writable.
 */
function readCache(bundle: string, variant?: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(cacheFile(bundle, variant), "r");
  } catch {
    // No cache for this kind of run (an install that made only some): the default one.
    return variant ? readCache(bundle) : undefined;
  }
  try {
    const own = statSync(bundle, { bigint: true });
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile() || st.uid !== own.uid || (st.mode & 0o022n) !== 0n) return undefined;
    const data = readFileSync(fd);
    const nl = data.indexOf(10);
    if (nl < 0 || data.toString("latin1", 0, nl) !== identity(own)) return undefined;
    return data.subarray(nl + 1);
  } finally {
    closeSync(fd);
  }
}

export type CacheUse = "accepted" | "rejected" | "none";

/**
 * V8 flags for a long run (`lean`, fast-commands.ts longRun: an input of 64 MiB or more, or a
 * URL): no optimizing compilers, Maglev and Turbofan. They are process-wide, so the engine's
 * worker threads run under them as well. Such a run's bulk work is OpenSSL's and the native
 * addon's; what got hot enough to be optimized was start-up's JS (the module loader's path
 * functions, the HPKE library's X25519 field arithmetic), and compiling it faulted in the
 * compilers' pages of the node binary and filled their zones: a 1 GiB file -> file seal or open
 * peaked at 100-101 MiB on Node 24 with them, 91-92 without (84-85 -> 80 on Node 20); the s3://
 * open of 256 MiB 98-102 -> 92 (docs/BENCHMARKS.md, 2026-12-05). They must be set before the
 * work's JS first runs (set once the input's size is known, they saved nothing). A short run
 * keeps the compilers: without Turbofan a 1 KiB seal or open took 3.5 ms more CPU (about a fifth
 * of `node -e 0`). V8 accepts a code cache only under the flags it was made with, and the build
 * makes the caches with short runs, so a lean run skips its cache (compiling lazily costs ~10
 * ms, nothing next to 64 MiB of work). The whole CLI (main.js: serve and the other long-lived
 * commands) always keeps the compilers.
 */
export const LEAN_V8_FLAGS = ["--no-turbofan", "--no-maglev"] as const;

/**
 * node:v8 is loaded only here: it brings Node's whole stream stack with it (internal/heap_utils),
 * about 20 internal modules that a short run does not otherwise load.
 */
function setLeanFlags(): void {
  const v8: typeof V8 = createRequire(import.meta.url)("node:v8");
  for (const flag of LEAN_V8_FLAGS) v8.setFlagsFromString(flag);
}

/**
 * Compiles `bundle` (not run): with its cache (for `variant`) where one matches, or lean
 * (LEAN_V8_FLAGS).
 */
export function compileBundle(
  bundle: string,
  lean = false,
  variant?: string,
): { script: Script; cache: CacheUse } {
  if (lean) setLeanFlags();
  const cachedData = lean ? undefined : readCache(bundle, variant);
  const script = new Script(`${WRAPPER}${readFileSync(bundle, "latin1")}\n})`, {
    filename: bundle,
    lineOffset: -1,
    ...(cachedData ? { cachedData } : {}),
  });
  const cache = !cachedData ? "none" : script.cachedDataRejected ? "rejected" : "accepted";
  return { script, cache };
}

/**
 * Runs `bundle` as its command. `dynamicImport` is the caller's `import()`, for a file in the
 * bundle's folder; `lean`: a long run, `variant`: the kind of run (compileBundle).
 */
export function runBundle(
  bundle: string,
  dynamicImport: (spec: string) => Promise<unknown>,
  lean = false,
  variant?: string,
): void {
  const { script } = compileBundle(bundle, lean, variant);
  const out = process.env.TENSORSEAL_CODE_CACHE_OUT;
  // After the command ran: the cache then holds the functions it compiled lazily too.
  if (out && !lean) process.on("exit", () => writeCache(bundle, script, out));
  const mod = new Module(bundle);
  mod.filename = bundle;
  mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(
    dirname(bundle),
  );
  const require = createRequire(bundle);
  require.cache[bundle] = mod;
  const fn = script.runInThisContext() as (...args: unknown[]) => void;
  fn.call(mod.exports, mod.exports, require, mod, bundle, dirname(bundle), dynamicImport);
  mod.loaded = true;
}

function writeCache(bundle: string, script: Script, out: string): void {
  const header = Buffer.from(`${identity(statSync(bundle, { bigint: true }))}\n`);
  writeFileSync(out, Buffer.concat([header, script.createCachedData()]), { mode: 0o644 });
}
