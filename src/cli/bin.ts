#!/usr/bin/env node
/**
 * `tensorseal` (package.json "bin", bundled to dist/cli/tensorseal.cjs). Picks what to load from
 * the command line alone: the most used commands each run from a CommonJS bundle of their own
 * (fast-commands.ts), everything else from the whole CLI (main.ts, ES modules code-split per
 * command). Both run the same command definitions (commands/*.ts) through the same run.ts, so a
 * command behaves the same either way; only the cost of loading it differs (issue #11: Node 20's
 * ES module loader costs about 5 ms before any of our code, CommonJS files much less).
 *
 * Only meaningful bundled: this file's import.meta.url is then the bundle's own (dist/cli),
 * where the other bundles lie (scripts/build-cli.mjs).
 */
import { fileURLToPath } from "node:url";
import { runBundle } from "./code-cache.js";
import { cacheVariant, fastBundleFor, longRun } from "./fast-commands.js";
import { sizeThreadPool } from "./pool-size.js";

sizeThreadPool(); // before anything uses the pool
const fast = fastBundleFor(process.argv.slice(2));
// With the V8 code cache the build wrote beside it for this kind of run (code-cache.ts), or lean
// for a long run; the bundle's import() of a package is this file's, which resolves from the
// same folder.
if (fast) {
  const argv = process.argv.slice(2);
  const url = new URL(`./${fast}.cjs`, import.meta.url);
  runBundle(fileURLToPath(url), (s) => import(s), longRun(argv), cacheVariant(argv));
} else void import("./main.js");
