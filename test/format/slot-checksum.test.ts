/**
 * Header slot checksums (format/header.ts): the native addon's SHA-256 when it loaded, noble's
 * without it (TENSORSEAL_NATIVE=0, in a child process: the choice is made once, at load). Both
 * accept the same slots and both see a torn one.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseHeader } from "../../src/format/header.js";
import { primitivesBackend } from "../../src/format/primitives.js";
import { sandboxWithSmallSeal } from "../cli/helpers.js";

const box = sandboxWithSmallSeal();
after(() => box.cleanup());
const HEADER_JS = fileURLToPath(new URL("../../src/format/header.js", import.meta.url));

/** What parseHeader says of `files` in a child process whose addon is switched off. */
function parseWithoutAddon(files: string[]): string[] {
  const code = `import { parseHeader } from ${JSON.stringify(HEADER_JS)};
import { readFileSync } from "node:fs";
import { primitivesBackend } from ${JSON.stringify(HEADER_JS.replace(/header\.js$/, "primitives.js"))};
const out = [primitivesBackend];
for (const f of process.argv.slice(1)) {
  try { out.push(String(parseHeader(readFileSync(f)).activeSlot)); } catch (e) { out.push(e.message); }
}
process.stdout.write(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", code, ...files], {
    env: { ...process.env, TENSORSEAL_NATIVE: "0", TENSORSEAL_REQUIRE_ALL: "0" },
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

test("the addon's and noble's SHA-256 read the same header, and both reject a torn slot", () => {
  if (process.env["TENSORSEAL_REQUIRE_ALL"] === "1") assert.equal(primitivesBackend, "native");
  const file = readFileSync(join(box.dir, "small.tseal"));
  const torn = Buffer.from(file);
  const h = parseHeader(file);
  // A byte of the active slot's body: its checksum no longer matches, the slot is damaged.
  const slotAt = h.headerLength - 2 * h.slotCapacity + h.activeSlot * h.slotCapacity;
  torn[slotAt + 12] = (torn[slotAt + 12] ?? 0) ^ 1;
  assert.throws(() => parseHeader(torn), /no intact header slot/);
  const tornPath = join(box.dir, "torn.tseal");
  writeFileSync(tornPath, torn);
  const [backend, intact, damaged] = parseWithoutAddon([join(box.dir, "small.tseal"), tornPath]);
  assert.equal(backend, "node:crypto");
  assert.equal(intact, String(h.activeSlot));
  assert.match(damaged!, /no intact header slot/);
});
