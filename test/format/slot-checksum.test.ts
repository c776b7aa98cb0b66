/**
 * Header slot checksums (format/header.ts): noble's SHA-256 by default, node:crypto's once a
 * caller that loads node:crypto anyway asks for it (slotChecksumsWith, `open`). Both accept
 * the same slots and both see a torn one.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { parseHeader, slotChecksumsWith } from "../../src/format/header.js";
import { sandboxWithSmallSeal } from "../cli/helpers.js";

const box = sandboxWithSmallSeal();
after(() => box.cleanup());

test("noble's and node:crypto's SHA-256 read the same header, and both reject a torn slot", () => {
  const file = readFileSync(join(box.dir, "small.tseal"));
  const torn = Buffer.from(file);
  const h = parseHeader(file); // noble's (the default)
  // A byte of the active slot's body: its checksum no longer matches, the slot is damaged.
  const slotAt = h.headerLength - 2 * h.slotCapacity + h.activeSlot * h.slotCapacity;
  torn[slotAt + 12] = (torn[slotAt + 12] ?? 0) ^ 1;
  assert.throws(() => parseHeader(torn), /no intact header slot/);
  slotChecksumsWith(createHash);
  assert.deepEqual(parseHeader(file), h);
  assert.throws(() => parseHeader(torn), /no intact header slot/);
});
