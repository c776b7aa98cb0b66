/** Property tests (fast-check): random sizes and chunk sizes round trip; random ranges. */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import fc from "fast-check";
import { closeWorkers, openFile, SealedFile, sealFile } from "../../src/engine/index.js";
import { codeOf, data, makeKey, tempDir } from "./helpers.js";

after(() => closeWorkers());
const alice = makeKey("alice");

test("random sizes and chunk sizes round trip through sealFile/openFile", async (t) => {
  const dir = tempDir(t);
  const input = join(dir, "plain");
  const sealed = join(dir, "x.tseal");
  const out = join(dir, "out");
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 14, max: 17 }),
      fc.integer({ min: 0, max: 300_000 }),
      async (log2, size) => {
        const plain = data(size);
        writeFileSync(input, plain);
        const chunkSize = 2 ** log2;
        await sealFile(input, sealed, { recipients: [alice.recipient], chunkSize, workers: 0 });
        const expected = 56 + 20 + size + (Math.floor(size / chunkSize) + 1) * 16;
        const r = await openFile(sealed, out, { identities: [alice.identity] });
        assert.equal(r.plaintextLength, size);
        assert.ok(readFileSync(out).equals(plain));
        assert.ok(readFileSync(sealed).length > expected);
      },
    ),
    { numRuns: 40 },
  );
});

test("readRange returns the plaintext slice and decrypts only the covering chunks", async (t) => {
  const dir = tempDir(t);
  const chunkSize = 16384;
  const size = 200_000;
  const plain = data(size);
  const input = join(dir, "plain");
  writeFileSync(input, plain);
  const sealed = join(dir, "x.tseal");
  await sealFile(input, sealed, { recipients: [alice.recipient], chunkSize });
  const file = await SealedFile.open(sealed, [alice.identity]);
  t.after(() => file.close());
  assert.equal(file.plaintextLength, size);
  assert.equal(file.stats.chunks, 1, "open authenticates the final chunk only");
  await fc.assert(
    fc.asyncProperty(
      fc
        .integer({ min: 0, max: size })
        .chain((offset) =>
          fc.tuple(fc.constant(offset), fc.integer({ min: 0, max: size - offset })),
        ),
      async ([offset, length]) => {
        const before = file.stats.chunks;
        const got = await file.readRange(offset, length);
        assert.ok(got.equals(plain.subarray(offset, offset + length)));
        const used = file.stats.chunks - before;
        assert.ok(used <= Math.ceil(length / chunkSize) + 1, `${used} chunks for ${length} bytes`);
      },
    ),
    { numRuns: 300 },
  );
});

test("readRange: exact chunk counts, bounds and close", async (t) => {
  const dir = tempDir(t);
  const input = join(dir, "plain");
  const plain = data(3 * 16384 + 10);
  writeFileSync(input, plain);
  const sealed = join(dir, "x.tseal");
  await sealFile(input, sealed, { recipients: [alice.recipient], chunkSize: 16384 });
  const file = await SealedFile.open(sealed, [alice.identity]);
  const count = async (o: number, l: number) => {
    const before = file.stats.chunks;
    await file.readRange(o, l);
    return file.stats.chunks - before;
  };
  assert.equal(await count(0, 16384), 1);
  assert.equal(await count(16383, 2), 2);
  assert.equal(await count(100, 0), 0);
  assert.equal(await count(3 * 16384, 10), 1);
  assert.equal(await codeOf(file.readRange(0, plain.length + 1)), "E_USAGE");
  assert.equal(await codeOf(file.readRange(-1, 1)), "E_USAGE");
  assert.equal(await codeOf(file.readRange(1.5, 1)), "E_USAGE");
  assert.ok((await file.readRange(plain.length, 0)).length === 0);
  await file.close();
  assert.equal(await codeOf(file.readRange(0, 1)), "E_USAGE");
});

test("SealedFile.open authenticates the length: a cut final chunk fails at open", async (t) => {
  const dir = tempDir(t);
  const input = join(dir, "plain");
  writeFileSync(input, data(40_000));
  const sealed = join(dir, "x.tseal");
  const { sealStream } = await import("../../src/engine/index.js");
  const { createReadStream, createWriteStream } = await import("node:fs");
  // Stream-sealed: no recorded length, so only the final chunk can tell a cut file.
  await sealStream(createReadStream(input), createWriteStream(sealed), {
    recipients: [alice.recipient],
    chunkSize: 16384,
  });
  const bytes = readFileSync(sealed);
  writeFileSync(sealed, bytes.subarray(0, bytes.length - 100));
  assert.equal(await codeOf(SealedFile.open(sealed, [alice.identity])), "E_DECRYPT");
  writeFileSync(sealed, bytes);
  const f = await SealedFile.open(sealed, [alice.identity]);
  assert.equal(f.plaintextLength, 40_000);
  assert.equal(f.descriptor.plaintextLength, null);
  await f.close();
});
