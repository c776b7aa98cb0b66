/**
 * The console's first-load budget: the JavaScript and CSS a first visit downloads (everything
 * index.html names), compressed, at most 250 KB. Measured on the built files in dist/console.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { CONSOLE_DIR } from "../../src/service/console/routes.js";

export const FIRST_LOAD_BUDGET = 250 * 1024;

/** The files index.html loads (script src and stylesheet href under /console/). */
export function firstLoadFiles(): string[] {
  const html = readFileSync(join(CONSOLE_DIR, "index.html"), "utf8");
  return [...html.matchAll(/(?:src|href)="\/console\/([^"]+\.(?:js|css))"/g)].map((m) => m[1]!);
}

test("first load: compressed JS + CSS within 250 KB (gzip and brotli)", () => {
  const files = firstLoadFiles();
  assert.deepEqual(files.sort(), ["app.css", "app.js"]);
  let gz = 0;
  let br = 0;
  for (const f of files) {
    const bytes = readFileSync(join(CONSOLE_DIR, f));
    gz += gzipSync(bytes, { level: 9 }).length;
    br += brotliCompressSync(bytes).length;
  }
  assert.ok(gz <= FIRST_LOAD_BUDGET, `gzip ${gz} bytes over the budget`);
  assert.ok(br <= FIRST_LOAD_BUDGET, `brotli ${br} bytes over the budget`);
});

test("the built console has no source maps and no inline script or style in index.html", () => {
  const html = readFileSync(join(CONSOLE_DIR, "index.html"), "utf8");
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/);
  assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=/i);
  assert.doesNotMatch(readFileSync(join(CONSOLE_DIR, "app.js"), "utf8"), /sourceMappingURL/);
});
