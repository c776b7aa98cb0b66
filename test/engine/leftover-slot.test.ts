/**
 * A header slot left by an interrupted rewrap (stale: intact and older; damaged: a torn write)
 * still carries an older recipient list. Every rewrap must clear it, even one with nothing to
 * change, and only after the active slot has been authenticated.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  addRecipients,
  closeWorkers,
  inspectFile,
  removeRecipients,
  rewrapFile,
  sealFile,
} from "../../src/engine/index.js";
import { isTensorSealError } from "../../src/format/errors.js";
import { parseHeader, slotOffset } from "../../src/format/header.js";
import type { Identity } from "../../src/format/stanza.js";
import { unlockFileKey } from "../../src/format/unlock.js";
import { codeOf, data, makeKey, tempDir } from "./helpers.js";

after(() => closeWorkers());

const alice = makeKey("alice");
const bob = makeKey("bob");

/** A file sealed for alice and bob, then rewrapped without bob, killed before the old slot was zeroed. */
async function interrupted(dir: string) {
  const input = join(dir, "plain");
  writeFileSync(input, data(20_000));
  const path = join(dir, "x.tseal");
  await sealFile(input, path, { recipients: [alice.recipient, bob.recipient], chunkSize: 16384 });
  const h1 = await inspectFile(path);
  const at = slotOffset(h1, h1.activeSlot);
  const gen1 = Buffer.from(readFileSync(path).subarray(at, at + h1.slotCapacity));
  await rewrapFile(path, {
    identities: [alice.identity],
    edit: removeRecipients((s) => bob.recipient.matches(s)),
  });
  const bytes = readFileSync(path);
  gen1.copy(bytes, at); // the old slot, as it was before the zeroing that never happened
  writeFileSync(path, bytes);
  return { path, oldSlot: at, capacity: h1.slotCapacity };
}

async function opensFor(bytes: Buffer, identity: Identity): Promise<boolean> {
  try {
    (await unlockFileKey(parseHeader(bytes), [identity])).fill(0);
    return true;
  } catch (e) {
    if (isTensorSealError(e)) return false;
    throw e;
  }
}

/** Damages the active slot's checksum (one flipped byte): a reader then falls back, if it can. */
function damageActive(bytes: Buffer): Buffer {
  const h = parseHeader(bytes);
  const out = Buffer.from(bytes);
  out[slotOffset(h, h.activeSlot) + 10]! ^= 0x01;
  return out;
}

test("a stale slot lets the removed recipient back in once the active slot is damaged", async (t) => {
  const { path } = await interrupted(tempDir(t));
  const h = await inspectFile(path);
  assert.equal(h.inactiveSlot.kind, "stale");
  assert.equal(h.staleSlot, true);
  const bytes = readFileSync(path);
  assert.equal(await opensFor(bytes, bob.identity), false);
  // The reason leftovers must go: this is what the rewraps below prevent.
  assert.equal(await opensFor(damageActive(bytes), bob.identity), true);
});

test("a rewrap with nothing to change clears a stale slot, and says so", async (t) => {
  const { path } = await interrupted(tempDir(t));
  const before = await inspectFile(path);
  const r = await rewrapFile(path, { identities: [alice.identity], edit: async (s) => [...s] });
  assert.deepEqual([r.changed, r.cleared, r.generation], [false, "stale", before.generation]);
  const h = await inspectFile(path);
  assert.equal(h.inactiveSlot.kind, "empty");
  assert.equal(h.generation, before.generation);
  assert.equal(await opensFor(damageActive(readFileSync(path)), bob.identity), false);
  // Nothing left: a second run writes nothing at all.
  const again = readFileSync(path);
  const r2 = await rewrapFile(path, { identities: [alice.identity], edit: async (s) => [...s] });
  assert.deepEqual([r2.changed, r2.cleared], [false, null]);
  assert.ok(readFileSync(path).equals(again));
});

test("retrying the interrupted removal succeeds unchanged and clears the stale slot", async (t) => {
  const { path } = await interrupted(tempDir(t));
  const r = await rewrapFile(path, {
    identities: [alice.identity],
    edit: removeRecipients((s) => bob.recipient.matches(s)),
  });
  assert.deepEqual([r.changed, r.cleared], [false, "stale"]);
  assert.equal((await inspectFile(path)).inactiveSlot.kind, "empty");
});

test("a rewrap that changes stanzas also clears the leftover first", async (t) => {
  const { path } = await interrupted(tempDir(t));
  const carol = makeKey("carol");
  const r = await rewrapFile(path, {
    identities: [alice.identity],
    edit: addRecipients([carol.recipient]),
  });
  assert.deepEqual([r.changed, r.cleared], [true, "stale"]);
  const bytes = readFileSync(path);
  assert.equal(parseHeader(bytes).inactiveSlot.kind, "empty");
  assert.equal(await opensFor(damageActive(bytes), bob.identity), false);
});

test("a damaged leftover (a torn zeroing) is reported and cleared too", async (t) => {
  const { path, oldSlot, capacity } = await interrupted(tempDir(t));
  const bytes = readFileSync(path);
  bytes.fill(0, oldSlot, oldSlot + 4); // only the length zeroed: the stanzas are still there
  writeFileSync(path, bytes);
  assert.equal((await inspectFile(path)).inactiveSlot.kind, "damaged");
  assert.equal((await inspectFile(path)).staleSlot, false);
  const r = await rewrapFile(path, { identities: [alice.identity], edit: async (s) => [...s] });
  assert.equal(r.cleared, "damaged");
  const after = readFileSync(path);
  assert.ok(after.subarray(oldSlot, oldSlot + capacity).every((b) => b === 0));
});

test("a leftover is not cleared on the word of an active slot that does not authenticate", async (t) => {
  const { path } = await interrupted(tempDir(t));
  const bytes = readFileSync(path);
  const h = parseHeader(bytes);
  // A forged newer slot would need the file key; here: the active slot's MAC is wrong.
  const macAt = slotOffset(h, h.activeSlot) + 4 + h.bodyBytes.length;
  bytes[macAt]! ^= 0x01;
  const sumAt = macAt + 32;
  const { createHash } = await import("node:crypto");
  createHash("sha256")
    .update(bytes.subarray(slotOffset(h, h.activeSlot), macAt + 32))
    .digest()
    .copy(bytes, sumAt);
  writeFileSync(path, bytes);
  assert.equal(
    await codeOf(rewrapFile(path, { identities: [alice.identity], edit: async (s) => [...s] })),
    "E_HEADER_MAC",
  );
  assert.ok(readFileSync(path).equals(bytes), "nothing written");
});
