// Bundles the web console (console/) into dist/console: app.js (Preact, minified ESM), app.css
// and index.html. No inline script or style (the console's CSP forbids them), no source maps
// shipped. Run by `npm run build` after tsc. Writes to a temp dir, then swaps it in.
import { copyFile, mkdir, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist", "console");
const tmp = `${out}.tmp-${process.pid}`;

await rm(tmp, { recursive: true, force: true });
await mkdir(tmp, { recursive: true });
await build({
  entryPoints: [join(root, "console", "src", "main.tsx")],
  outfile: join(tmp, "app.js"),
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2022",
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  logLevel: "warning",
});
await build({
  entryPoints: [join(root, "console", "app.css")],
  outfile: join(tmp, "app.css"),
  bundle: true,
  minify: true,
  logLevel: "warning",
});
await copyFile(join(root, "console", "index.html"), join(tmp, "index.html"));
await rm(out, { recursive: true, force: true });
await rename(tmp, out);
