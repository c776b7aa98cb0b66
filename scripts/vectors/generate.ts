/**
 * Writes spec/vectors/*.json from build.ts (run from the repository root after `tsc -p .`):
 *   node dist/scripts/vectors/generate.js
 * Stale vector files (names no longer generated) are removed; README.md is left alone.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildVectors, serialize } from "./build.js";

const DIR = join("spec", "vectors");
mkdirSync(DIR, { recursive: true });
const vectors = await buildVectors();
for (const f of readdirSync(DIR)) {
  if (f.endsWith(".json") && !vectors.has(f.slice(0, -5))) rmSync(join(DIR, f));
}
let bytes = 0;
for (const [name, v] of vectors) {
  const text = serialize(v);
  bytes += text.length;
  writeFileSync(join(DIR, `${name}.json`), text);
}
const valid = [...vectors.values()].filter((v) => v.valid).length;
console.log(
  `wrote ${vectors.size} vectors (${valid} valid, ${vectors.size - valid} invalid, ${bytes} bytes) to ${DIR}`,
);
