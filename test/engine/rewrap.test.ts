/** In-place rewrap: recipients change, the payload never does, old slots cannot be replayed. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  addRecipients,
  closeWorkers,
  inspectFile,
  openFile,
  removeRecipients,
  rewrapFile,
  sealFile,
} from "../../src/engine/index.js";
import { slotOffset } from "../../src/format/header.js";
import { codeOf, data, makeKey, tempDir } from "./helpers.js";

after(() => closeWorkers());

const alice = makeKey("alice");
const bob = makeKey("bob");
const carol = makeKey("carol");

async function sealed(dir: string, recipients = [alice, bob]) {
  const plain = data(50_000);
  const input = join(dir, "plain");
  writeFileSync(input, plain);
  const path = join(dir, "x.tseal");
  await sealFile(input, path, { recipients: recipients.map((k) => k.recipient), chunkSize: 16384 });
  return { plain, path };
}

async function opensWith(
  path: string,
  key: { identity: import("../../src/format/stanza.js").Identity },
  plain: Buffer,
) {
  const out = `${path}.out`;
  await openFile(path, out, { identities: [key.identity] });
  assert.ok(readFileSync(out).equals(plain));
}

const payloadHash = async (path: string) => {
  const h = await inspectFile(path);
  return createHash("sha256").update(readFileSync(path).subarray(h.headerLength)).digest("hex");
};

test("add and remove recipients; payload bytes never change", async (t) => {
  const dir = tempDir(t);
  const { plain, path } = await sealed(dir);
  const hash = await payloadHash(path);
  const r1 = await rewrapFile(path, {
    identities: [alice.identity],
    edit: addRecipients([carol.recipient]),
  });
  assert.equal(r1.generation, 2);
  assert.equal(r1.stanzas.length, 3);
  await opensWith(path, carol, plain);
  const r2 = await rewrapFile(path, {
    identities: [carol.identity],
    edit: removeRecipients((s) => bob.recipient.matches(s)),
  });
  assert.equal(r2.generation, 3);
  assert.equal(
    await codeOf(openFile(path, join(dir, "o"), { identities: [bob.identity] })),
    "E_NO_IDENTITY",
  );
  await opensWith(path, alice, plain);
  await opensWith(path, carol, plain);
  assert.equal(await payloadHash(path), hash);
  const h = await inspectFile(path);
  assert.equal(h.generation, 3);
  assert.equal(h.staleSlot, false);
  // Adding a recipient that already has a stanza replaces it (no duplicates).
  const r3 = await rewrapFile(path, {
    identities: [alice.identity],
    edit: addRecipients([alice.recipient]),
  });
  assert.equal(r3.stanzas.length, 2);
});

test("removals that leave no recipient are refused; one that matches nothing changes nothing", async (t) => {
  const dir = tempDir(t);
  const { path } = await sealed(dir);
  const before = readFileSync(path);
  assert.equal(
    await codeOf(
      rewrapFile(path, { identities: [alice.identity], edit: removeRecipients(() => true) }),
    ),
    "E_USAGE",
  );
  const none = await rewrapFile(path, {
    identities: [alice.identity],
    edit: removeRecipients((s) => carol.recipient.matches(s)),
  });
  assert.equal(none.changed, false);
  assert.equal(none.generation, 1);
  assert.equal(
    await codeOf(rewrapFile(path, { identities: [carol.identity], edit: async (s) => [...s] })),
    "E_NO_IDENTITY",
  );
  assert.ok(readFileSync(path).equals(before), "a refused rewrap writes nothing");
});

test("after removing a recipient, old slot bytes cannot be replayed", async (t) => {
  const dir = tempDir(t);
  const { plain, path } = await sealed(dir);
  const h1 = await inspectFile(path);
  const cap = h1.slotCapacity;
  const at = (slot: 0 | 1) => slotOffset(h1, slot);
  const old = readFileSync(path).subarray(at(h1.activeSlot), at(h1.activeSlot) + cap);
  await rewrapFile(path, {
    identities: [alice.identity],
    edit: removeRecipients((s) => bob.recipient.matches(s)),
  });
  const after1 = readFileSync(path);
  const h2 = await inspectFile(path);
  assert.notEqual(h2.activeSlot, h1.activeSlot);
  assert.ok(
    after1.subarray(at(h1.activeSlot), at(h1.activeSlot) + cap).every((b) => b === 0),
    "the old slot is zeroed",
  );
  const bobCode = (bytes: Buffer) => {
    writeFileSync(path, bytes);
    return codeOf(openFile(path, join(dir, "o"), { identities: [bob.identity] }));
  };
  assert.equal(await bobCode(after1), "E_NO_IDENTITY");
  // 1. Old slot copied back into the zeroed position: the higher generation still wins.
  const replay = Buffer.from(after1);
  old.copy(replay, at(h1.activeSlot));
  assert.equal(await bobCode(replay), "E_NO_IDENTITY");
  // 2. Slots swapped: positions do not matter, generations do.
  const swapped = Buffer.from(after1);
  after1.copy(swapped, at(0), at(1), at(1) + cap);
  after1.copy(swapped, at(1), at(0), at(0) + cap);
  assert.equal(await bobCode(swapped), "E_NO_IDENTITY");
  // 3. Old slot with its generation raised: the checksum marks it damaged...
  const bumped = Buffer.from(old);
  bumped.writeUInt32BE(99, 4 + 4); // low half of the u64 generation at body offset 0
  const edited = Buffer.from(after1);
  bumped.copy(edited, at(h1.activeSlot));
  assert.equal(await bobCode(edited), "E_NO_IDENTITY");
  // ...and with a recomputed checksum the header MAC (which covers the generation) fails.
  const bodyLength = bumped.readUInt32BE(0);
  createHash("sha256")
    .update(bumped.subarray(0, 4 + bodyLength + 32))
    .digest()
    .copy(bumped, 4 + bodyLength + 32);
  const forged = Buffer.from(after1);
  bumped.copy(forged, at(h1.activeSlot));
  assert.equal(await bobCode(forged), "E_HEADER_MAC");
  // 4. The same generation edit on the current slot: MAC failure for everyone.
  const cur = Buffer.from(after1.subarray(at(h2.activeSlot), at(h2.activeSlot) + cap));
  cur.writeUInt32BE(7, 8);
  const curLen = cur.readUInt32BE(0);
  createHash("sha256")
    .update(cur.subarray(0, 4 + curLen + 32))
    .digest()
    .copy(cur, 4 + curLen + 32);
  const self = Buffer.from(after1);
  cur.copy(self, at(h2.activeSlot));
  writeFileSync(path, self);
  assert.equal(
    await codeOf(openFile(path, join(dir, "o"), { identities: [alice.identity] })),
    "E_HEADER_MAC",
  );
  // Limit, by design: replacing the NEW slot with the saved old bytes recreates the genuine
  // pre-rewrap file (same file key, unchanged payload), which the removed recipient could
  // always open from their own copy. Rewrap cannot revoke data already copied; re-seal does.
  const restored = Buffer.from(after1);
  restored.fill(0, at(h2.activeSlot), at(h2.activeSlot) + cap);
  old.copy(restored, at(h1.activeSlot));
  writeFileSync(path, restored);
  await opensWith(path, bob, plain);
});

test("rewrap survives SIGKILL at random moments", { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const { plain, path } = await sealed(dir, [alice]);
  const hash = await payloadHash(path);
  const script = fileURLToPath(new URL("./fixtures/rewrap-loop.js", import.meta.url));
  const args = [script, path, alice.kek.toString("hex"), bob.kek.toString("hex")];
  const generations = new Set<number>();
  let bobPresent = 0;
  let stale = 0;
  for (let i = 0; i < 60; i++) {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    // Wait until it is inside the loop, then let it run a random short while.
    await new Promise<void>((resolve, reject) => {
      child.stdout.once("data", () => resolve());
      child.once("exit", (code) => reject(new Error(`rewrap loop exited early (${code})`)));
    });
    await new Promise((r) => setTimeout(r, Math.random() * 25));
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
    const h = await inspectFile(path);
    generations.add(h.generation);
    if (h.staleSlot) stale++;
    assert.equal(await payloadHash(path), hash, `payload changed after kill ${i}`);
    await opensWith(path, alice, plain);
    if (h.stanzas.length === 2) {
      bobPresent++;
      await opensWith(path, bob, plain);
    } else {
      assert.equal(h.stanzas.length, 1);
      assert.equal(
        await codeOf(openFile(path, join(dir, "o"), { identities: [bob.identity] })),
        "E_NO_IDENTITY",
      );
    }
  }
  assert.ok(generations.size > 10, `kills landed at ${generations.size} distinct generations`);
  t.diagnostic(
    `generations seen ${generations.size}, bob present ${bobPresent}/60, stale slot ${stale}/60`,
  );
});

test("an interrupted rewrap (stale intact older slot) is simply overwritten by the next", async (t) => {
  const dir = tempDir(t);
  const { plain, path } = await sealed(dir);
  const h1 = await inspectFile(path);
  const cap = h1.slotCapacity;
  const at = slotOffset(h1, h1.activeSlot);
  const gen1 = readFileSync(path).subarray(at, at + cap);
  await rewrapFile(path, { identities: [alice.identity], edit: addRecipients([carol.recipient]) });
  // Simulate a crash between "write new slot" and "zero old slot".
  const bytes = readFileSync(path);
  gen1.copy(bytes, at);
  writeFileSync(path, bytes);
  const h2 = await inspectFile(path);
  assert.equal(h2.staleSlot, true);
  assert.equal(h2.generation, 2);
  await opensWith(path, carol, plain);
  const r = await rewrapFile(path, {
    identities: [alice.identity],
    edit: removeRecipients((s) => carol.recipient.matches(s)),
  });
  assert.equal(r.generation, 3);
  const h3 = await inspectFile(path);
  assert.equal(h3.staleSlot, false);
  assert.equal(h3.activeSlot, h1.activeSlot, "generation 3 went where the stale slot was");
  assert.equal(
    await codeOf(openFile(path, join(dir, "o"), { identities: [carol.identity] })),
    "E_NO_IDENTITY",
  );
});
