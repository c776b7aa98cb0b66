/**
 * Tampering with a sealed file must be rejected with the error code that names the attack, and
 * must never leave an output or a temp file behind.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  closeSync,
  createReadStream,
  createWriteStream,
  openSync,
  readFileSync,
  readSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  closeWorkers,
  inspectFile,
  openFile,
  openStream,
  sealFile,
  sealStream,
} from "../../src/engine/index.js";
import { TAG_SIZE } from "../../src/format/chunked.js";
import { slotOffset } from "../../src/format/header.js";
import { assertNoOutput, codeOf, data, makeKey, tempDir, tempOutputs } from "./helpers.js";

after(() => closeWorkers());

const CS = 16384;
const alice = makeKey("alice");

async function sealedFixture(dir: string, size: number, stream = false) {
  const plain = data(size);
  const input = join(dir, `plain-${size}`);
  writeFileSync(input, plain);
  const sealed = join(dir, `sealed-${size}${stream ? "-stream" : ""}.tseal`);
  if (stream) {
    await sealStream(createReadStream(input), createWriteStream(sealed), {
      recipients: [alice.recipient],
      chunkSize: CS,
    });
  } else {
    await sealFile(input, sealed, { recipients: [alice.recipient], chunkSize: CS, workers: 0 });
  }
  const h = await inspectFile(sealed);
  const bytes = readFileSync(sealed);
  const chunksOffset = h.headerLength + 56;
  const chunkCount = Math.floor(size / CS) + 1;
  const chunkAt = (k: number) => chunksOffset + k * (CS + TAG_SIZE);
  const chunkLen = (k: number) => (k < chunkCount - 1 ? CS : size - k * CS) + TAG_SIZE;
  return { plain, sealed, h, bytes, chunksOffset, chunkCount, chunkAt, chunkLen };
}

function openTo(dir: string, file: string) {
  return openFile(file, join(dir, "out"), { identities: [alice.identity], workers: 0 });
}

async function streamCode(file: string, dir: string): Promise<string> {
  return codeOf(
    openStream(createReadStream(file), createWriteStream(join(dir, "stream-out")), {
      identities: [alice.identity],
    }),
  );
}

test("every single-bit flip in the header, prefix, tags and data is rejected", async (t) => {
  const dir = tempDir(t);
  const f = await sealedFixture(dir, 40 * 1024);
  const out = join(dir, "out");
  const fd = openSync(f.sealed, "r+");
  t.after(() => closeSync(fd));
  const one = Buffer.alloc(1);
  const flip = (pos: number, bit: number) => {
    readSync(fd, one, 0, 1, pos);
    one[0]! ^= 1 << bit;
    writeSync(fd, one, 0, 1, pos);
  };
  const expectFlip = async (pos: number, bit: number, codes: string[], what: string) => {
    flip(pos, bit);
    const code = await codeOf(openTo(dir, f.sealed));
    flip(pos, bit);
    assert.ok(codes.includes(code), `${what}: byte ${pos} bit ${bit} gave ${code}`);
    assertNoOutput(dir, out);
  };
  const slot0 = slotOffset(f.h, f.h.activeSlot);
  const slotUsed = 4 + f.h.bodyBytes.length + 32 + 32;
  let flips = 0;
  const header = ["E_NOT_TSEAL", "E_UNSUPPORTED", "E_MALFORMED", "E_TRUNCATED", "E_HEADER_MAC"];
  for (let pos = 0; pos < 20; pos++) {
    for (let bit = 0; bit < 8; bit++, flips++) await expectFlip(pos, bit, header, "prefix");
  }
  const descriptor = ["E_MALFORMED", "E_UNSUPPORTED", "E_HEADER_MAC"];
  for (let pos = 20; pos < 20 + f.h.descriptorLength; pos++) {
    for (let bit = 0; bit < 8; bit++, flips++) await expectFlip(pos, bit, descriptor, "descriptor");
  }
  // The active slot: length, body, MAC and checksum. The checksum marks it damaged, and with
  // no other intact slot the header is rejected.
  for (let pos = slot0; pos < slot0 + slotUsed; pos++) {
    for (let bit = 0; bit < 8; bit++, flips++) await expectFlip(pos, bit, ["E_MALFORMED"], "slot");
  }
  for (let pos = slot0 + slotUsed; pos < slot0 + f.h.slotCapacity; pos += 61, flips++) {
    await expectFlip(pos, pos % 8, ["E_MALFORMED"], "slot padding");
  }
  // Its first and last padding bytes: the ends of the all-zero check.
  for (const pos of [slot0 + slotUsed, slot0 + f.h.slotCapacity - 1]) {
    for (let bit = 0; bit < 8; bit++, flips++) {
      await expectFlip(pos, bit, ["E_MALFORMED"], "slot padding ends");
    }
  }
  for (let pos = f.h.headerLength; pos < f.chunksOffset; pos++) {
    for (let bit = 0; bit < 8; bit++, flips++) {
      await expectFlip(pos, bit, ["E_COMMITMENT"], "salt/commitment");
    }
  }
  for (let k = 0; k < f.chunkCount; k++) {
    const start = f.chunkAt(k);
    const tag = start + f.chunkLen(k) - TAG_SIZE;
    for (let pos = start; pos < tag; pos += 64, flips++) {
      await expectFlip(pos, (pos >> 6) % 8, ["E_DECRYPT"], `chunk ${k} data`);
    }
    for (let pos = tag; pos < tag + TAG_SIZE; pos++) {
      for (let bit = 0; bit < 8; bit++, flips++) {
        await expectFlip(pos, bit, ["E_DECRYPT"], `chunk ${k} tag`);
      }
    }
  }
  assert.ok(flips > 2500, `${flips} flips`);
  assert.ok(readFileSync(f.sealed).equals(f.bytes), "every flip was undone");
});

test("damage to the empty inactive slot is tolerated: it is crash-recovery space", async (t) => {
  // A torn rewrap leaves exactly this state, so it must open; it grants an attacker nothing:
  // the active slot alone decides the stanzas, and it is still MAC-verified.
  const dir = tempDir(t);
  const f = await sealedFixture(dir, 40 * 1024);
  const other = slotOffset(f.h, f.h.activeSlot === 0 ? 1 : 0);
  for (const pos of [other, other + 3, other + 100, other + f.h.slotCapacity - 1]) {
    const copy = Buffer.from(f.bytes);
    copy[pos]! ^= 0x10;
    writeFileSync(f.sealed, copy);
    await openTo(dir, f.sealed);
    assert.ok(readFileSync(join(dir, "out")).equals(f.plain));
  }
});

function cutPoints(f: Awaited<ReturnType<typeof sealedFixture>>): number[] {
  const points = new Set([0, 1, 7, 8, 19, 20, 30, f.h.headerLength - 1, f.h.headerLength]);
  for (const d of [1, 24, 55, 56, 57]) points.add(f.h.headerLength + d);
  for (let k = 0; k < f.chunkCount; k++) {
    const end = f.chunkAt(k) + f.chunkLen(k);
    for (const p of [f.chunkAt(k) + 1, f.chunkAt(k) + 100, end - TAG_SIZE, end - 1, end]) {
      points.add(p);
    }
  }
  points.delete(f.bytes.length);
  return [...points].filter((p) => p < f.bytes.length).sort((a, b) => a - b);
}

test("truncation at and between every chunk boundary is rejected", async (t) => {
  const dir = tempDir(t);
  for (const stream of [false, true]) {
    const f = await sealedFixture(dir, 40 * 1024, stream);
    const cut = join(dir, "cut.tseal");
    for (const p of cutPoints(f)) {
      writeFileSync(cut, f.bytes.subarray(0, p));
      const code = await codeOf(openTo(dir, cut));
      // With a recorded length the size check catches every cut; a stream-sealed file learns
      // of a cut inside the final chunk when that chunk fails to authenticate.
      const allowed =
        stream && p > f.h.headerLength ? ["E_TRUNCATED", "E_DECRYPT"] : ["E_TRUNCATED"];
      assert.ok(allowed.includes(code), `cut at ${p} (stream ${stream}): ${code}`);
      assertNoOutput(dir, join(dir, "out"));
      const sc = await streamCode(cut, dir);
      assert.ok(["E_TRUNCATED", "E_DECRYPT"].includes(sc), `stream open, cut at ${p}: ${sc}`);
    }
  }
});

test("appended data, reordered and duplicated chunks are rejected", async (t) => {
  const dir = tempDir(t);
  for (const stream of [false, true]) {
    const f = await sealedFixture(dir, 40 * 1024, stream);
    const chunk = (k: number) => f.bytes.subarray(f.chunkAt(k), f.chunkAt(k) + f.chunkLen(k));
    const head = f.bytes.subarray(0, f.chunksOffset);
    const lengthCode = stream ? "E_DECRYPT" : "E_TRAILING";
    const cases: [string, Buffer, string][] = [
      ["one byte appended", Buffer.concat([f.bytes, Buffer.from([0])]), lengthCode],
      ["a valid chunk appended", Buffer.concat([f.bytes, chunk(0)]), lengthCode],
      ["chunks 0 and 1 swapped", Buffer.concat([head, chunk(1), chunk(0), chunk(2)]), "E_DECRYPT"],
      ["chunk 0 twice", Buffer.concat([head, chunk(0), chunk(0), chunk(2)]), "E_DECRYPT"],
      [
        "chunk 0 inserted",
        Buffer.concat([head, chunk(0), chunk(0), chunk(1), chunk(2)]),
        lengthCode,
      ],
    ];
    const bad = join(dir, "bad.tseal");
    for (const [what, bytes, want] of cases) {
      assert.equal(
        bytes.length === f.bytes.length,
        what.includes("swapped") || what.includes("twice"),
      );
      writeFileSync(bad, bytes);
      assert.equal(await codeOf(openTo(dir, bad)), want, `${what} (stream-sealed ${stream})`);
      assertNoOutput(dir, join(dir, "out"));
      const sc = await streamCode(bad, dir);
      assert.ok(["E_DECRYPT", "E_TRAILING"].includes(sc), `${what}: stream open gave ${sc}`);
    }
  }
});

/** Re-encodes a slot around a chosen body and MAC with a valid (unkeyed) checksum. */
function forgeSlot(body: Buffer, mac: Buffer, capacity: number): Buffer {
  const slot = Buffer.alloc(capacity);
  slot.writeUInt32BE(body.length, 0);
  body.copy(slot, 4);
  mac.copy(slot, 4 + body.length);
  createHash("sha256")
    .update(slot.subarray(0, 4 + body.length + 32))
    .digest()
    .copy(slot, 4 + body.length + 32);
  return slot;
}

test("a stanza spliced from another file fails the header MAC", async (t) => {
  const dir = tempDir(t);
  const a = await sealedFixture(dir, 1000);
  const bDir = join(dir, "b");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(bDir);
  const b = await sealedFixture(bDir, 2000);
  // File a's slot, with file b's stanza (same recipient, other file key) in place of a's own.
  const forged = forgeSlot(b.h.bodyBytes, a.h.mac, a.h.slotCapacity);
  const bytes = Buffer.from(a.bytes);
  forged.copy(bytes, slotOffset(a.h, a.h.activeSlot));
  writeFileSync(a.sealed, bytes);
  assert.equal(await codeOf(openTo(dir, a.sealed)), "E_HEADER_MAC");
  assertNoOutput(dir, join(dir, "out"));
});

test("an edited descriptor is rejected", async (t) => {
  const dir = tempDir(t);
  const plain = data(5000);
  const input = join(dir, "plain");
  writeFileSync(input, plain);
  const sealed = join(dir, "x.tseal");
  await sealFile(input, sealed, {
    recipients: [alice.recipient],
    chunkSize: CS,
    labels: { model: "llama-7b" },
    context: { env: "prod" },
  });
  const original = readFileSync(sealed);
  const edit = (from: string, to: string) => {
    const i = original.indexOf(from);
    assert.ok(i > 0 && i < 200);
    const copy = Buffer.from(original);
    copy.write(to, i);
    writeFileSync(sealed, copy);
  };
  edit("llama-7b", "llama-8b"); // a label: no key needed to read, but the MAC covers it
  assert.equal(await codeOf(openTo(dir, sealed)), "E_HEADER_MAC");
  edit("prod", "test"); // the encryption context
  assert.equal(await codeOf(openTo(dir, sealed)), "E_HEADER_MAC");
  const copy = Buffer.from(original);
  copy[20 + 3]! |= 0x80; // an unknown descriptor flag
  writeFileSync(sealed, copy);
  assert.equal(await codeOf(openTo(dir, sealed)), "E_MALFORMED");
  assertNoOutput(dir, join(dir, "out"));
});

test("wrong key and non-tseal input", async (t) => {
  const dir = tempDir(t);
  const f = await sealedFixture(dir, 100);
  const mallory = makeKey("mallory");
  const out = join(dir, "out");
  assert.equal(
    await codeOf(openFile(f.sealed, out, { identities: [mallory.identity] })),
    "E_NO_IDENTITY",
  );
  const same = makeKey("alice"); // same name, other key material: the stanza does not open
  assert.equal(await codeOf(openFile(f.sealed, out, { identities: [same.identity] })), "E_DECRYPT");
  writeFileSync(join(dir, "plain.txt"), "hello, this is not sealed at all");
  assert.equal(await codeOf(openTo(dir, join(dir, "plain.txt"))), "E_NOT_TSEAL");
  assertNoOutput(dir, out);
});

test("a failed open (tampered last chunk) leaves no output, no temp file, and the old target", async (t) => {
  const dir = tempDir(t);
  const size = 6 * (1 << 20) + 100;
  const plain = data(size);
  const input = join(dir, "plain");
  writeFileSync(input, plain);
  const sealed = join(dir, "x.tseal");
  await sealFile(input, sealed, { recipients: [alice.recipient], chunkSize: CS, workers: 2 });
  const bytes = readFileSync(sealed);
  bytes[bytes.length - 5]! ^= 1;
  writeFileSync(sealed, bytes);
  for (const workers of [0, 2]) {
    const out = join(dir, `out-${workers}`);
    assert.equal(
      await codeOf(openFile(sealed, out, { identities: [alice.identity], workers })),
      "E_DECRYPT",
    );
    assertNoOutput(dir, out);
  }
  const existing = join(dir, "existing");
  writeFileSync(existing, "previous contents");
  assert.equal(
    await codeOf(openFile(sealed, existing, { identities: [alice.identity], workers: 2 })),
    "E_DECRYPT",
  );
  assert.equal(readFileSync(existing, "utf8"), "previous contents");
  assert.deepEqual(tempOutputs(dir), []);
  // A tampered first chunk stops the other worker early too.
  bytes[bytes.length - 5]! ^= 1;
  bytes[f0(bytes)]! ^= 1;
  writeFileSync(sealed, bytes);
  assert.equal(
    await codeOf(openFile(sealed, join(dir, "o"), { identities: [alice.identity], workers: 2 })),
    "E_DECRYPT",
  );
  assertNoOutput(dir, join(dir, "o"));
});

/** Offset of a byte inside chunk 0 of a sealed file with the default slot capacity. */
function f0(bytes: Buffer): number {
  const descriptorLength = bytes.readUInt32BE(12);
  return 20 + descriptorLength + 2 * 8192 + 56 + 10;
}

test("file system errors surface as E_IO or E_USAGE, never as raw errors", async (t) => {
  const dir = tempDir(t);
  const out = join(dir, "out");
  assert.equal(await codeOf(openTo(dir, join(dir, "missing.tseal"))), "E_IO");
  assert.equal(await codeOf(openTo(dir, dir)), "E_IO"); // a directory
  assert.equal(
    await codeOf(sealFile(dir, out, { recipients: [alice.recipient] })),
    "E_USAGE", // not a regular file
  );
  const input = join(dir, "plain");
  writeFileSync(input, "x");
  assert.equal(
    await codeOf(
      sealFile(input, join(dir, "no", "such", "dir"), { recipients: [alice.recipient] }),
    ),
    "E_IO",
  );
  assertNoOutput(dir, out);
});
