/**
 * Preload (`node --import dist/test/cli/module-log.js`) that lists every JavaScript, JSON, wasm
 * and addon file the process loaded, one file: URL a line, into $TENSORSEAL_MODULE_LOG. ES
 * modules are seen by a `load` hook (module.register, Node >= 20.6, which runs on the loader
 * thread and appends each URL as it loads); CommonJS files (a CJS package's own require()s,
 * which Node 20 does not route through the hooks) are read from the require cache at exit. The
 * union, deduplicated by the reader, is what start-up tests bound.
 */
import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";
import { pathToFileURL } from "node:url";

const log = process.env.TENSORSEAL_MODULE_LOG;
if (log) {
  register("./module-log-hooks.js", import.meta.url, { data: { log } });
  const require = createRequire(import.meta.url);
  process.on("exit", () => {
    const cache = require.cache as Record<string, unknown>;
    const urls = Object.keys(cache).map((p) => (p.startsWith("/") ? pathToFileURL(p).href : p));
    if (urls.length > 0) appendFileSync(log, `${urls.join("\n")}\n`);
  });
}
