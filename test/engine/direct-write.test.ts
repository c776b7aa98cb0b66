/**
 * File outputs around the page cache (engine/direct-write.ts): the bytes land where they
 * belong whatever the alignment of offset and length, sealed and opened files are the same
 * with and without O_DIRECT, and a tampered chunk still leaves no output behind.
 */
import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, type TestContext, test } from "node:test";
import { BatchBuffers } from "../../src/engine/batch.js";
import {
  alignedBuffer,
  closeDirect,
  DIRECT_ALIGN,
  openDirect,
  writeDirect,
  writeDirectAsync,
} from "../../src/engine/direct-write.js";
import { closeWorkers, openFile, sealFile } from "../../src/engine/index.js";
import { nativeGcm } from "../../src/engine/native-gcm.js";
import { assertNoOutput, codeOf, data, makeKey, tempDir } from "./helpers.js";

after(() => closeWorkers());

const alice = makeKey("alice");
const ci = process.env.CI === "true" || process.env.TENSORSEAL_REQUIRE_ALL === "1";

/** Skips `t` where the addon (and so aligned buffers) is missing; in CI that fails instead. */
function noAlignedBuffers(t: TestContext): boolean {
  if (nativeGcm?.alignedBuffer) return false;
  assert.ok(!ci, "CI builds the addon (npm run build:native)");
  t.skip("native addon not built");
  return true;
}

const cases = (size: number): [number, number][] => [
  [0, DIRECT_ALIGN * 2], // aligned both ends
  [DIRECT_ALIGN * 2 + 5, 10], // inside one block
  [DIRECT_ALIGN * 3 - 7, DIRECT_ALIGN * 5 + 11], // both edges unaligned
  [DIRECT_ALIGN * 9, DIRECT_ALIGN * 6 + 3], // aligned start, short tail
  [size - 100, 100], // the file's unaligned end
];

for (const mode of ["sync", "async"] as const) {
  test(`writeDirect (${mode}) puts every byte at its offset: aligned middle, unaligned edges`, async (t) => {
    if (noAlignedBuffers(t)) return;
    const dir = tempDir(t);
    const path = join(dir, "out");
    const size = 5 * DIRECT_ALIGN * 4 + 123;
    writeFileSync(path, Buffer.alloc(size));
    const fd = openSync(path, "r+");
    const directFd = openDirect(fd);
    const expected = Buffer.alloc(size);
    try {
      for (const [position, length] of cases(size)) {
        const bytes = data(length);
        bytes.copy(expected, position);
        const buf = alignedBuffer(length);
        const at = position % DIRECT_ALIGN;
        bytes.copy(buf, at);
        // Without O_DIRECT (a file system that refuses it) both paths must still be exact.
        if (mode === "sync") writeDirect(fd, directFd ?? fd, buf, at, length, position);
        else await writeDirectAsync(fd, directFd ?? fd, buf, at, length, position);
      }
    } finally {
      closeDirect(directFd);
      closeSync(fd);
    }
    assert.deepEqual(readFileSync(path), expected);
  });
}

test("consecutive batches with an edge carry: only the two ends of the run go through the cache", async (t) => {
  if (noAlignedBuffers(t)) return;
  // The ordinary and the direct descriptor on two different files, to see which bytes went
  // which way; both overlaid must be the whole run.
  const dir = tempDir(t);
  const cachePath = join(dir, "cache");
  const directPath = join(dir, "direct");
  const start = 3 * DIRECT_ALIGN + 1000; // unaligned, like a header before the chunks
  // Batch lengths that end unaligned, one inside a single block, one ending on a boundary.
  const lengths = [5 * DIRECT_ALIGN + 17, 300, 2 * DIRECT_ALIGN, DIRECT_ALIGN * 4 - 1317, 999];
  const end = lengths.reduce((a, n) => a + n, start);
  const size = Math.ceil(end / DIRECT_ALIGN) * DIRECT_ALIGN + DIRECT_ALIGN;
  writeFileSync(cachePath, Buffer.alloc(size));
  writeFileSync(directPath, Buffer.alloc(size));
  const fd = openSync(cachePath, "r+");
  const plainDirect = openSync(directPath, "r+");
  const directFd = openDirect(plainDirect);
  const expected = Buffer.alloc(size);
  const bufs = new BatchBuffers();
  try {
    let position = start;
    for (const length of lengths) {
      const bytes = data(length);
      bytes.copy(expected, position);
      const buf = bufs.aligned(length, true);
      const at = position % DIRECT_ALIGN;
      bytes.copy(buf, at);
      bufs.writing(
        writeDirectAsync(fd, directFd ?? plainDirect, buf, at, length, position, bufs.carry),
      );
      await bufs.ready();
      position += length;
    }
    await bufs.settle(); // writes the last tail, still carried
  } finally {
    bufs.wipe();
    closeDirect(directFd);
    closeSync(plainDirect);
    closeSync(fd);
  }
  const viaCache = readFileSync(cachePath);
  const viaDirect = readFileSync(directPath);
  const headEnd = Math.ceil(start / DIRECT_ALIGN) * DIRECT_ALIGN;
  const tailStart = Math.floor(end / DIRECT_ALIGN) * DIRECT_ALIGN;
  // Through the cache: the run's unaligned head and tail, nothing in between.
  assert.deepEqual(viaCache.subarray(start, headEnd), expected.subarray(start, headEnd));
  assert.deepEqual(viaCache.subarray(tailStart, end), expected.subarray(tailStart, end));
  assert.ok(
    viaCache.subarray(headEnd, tailStart).every((b) => b === 0),
    "no edge in between",
  );
  // Around it: every whole block in between, the blocks batches share included.
  assert.deepEqual(viaDirect.subarray(headEnd, tailStart), expected.subarray(headEnd, tailStart));
  assert.ok(viaDirect.subarray(0, headEnd).every((b) => b === 0));
  assert.ok(viaDirect.subarray(tailStart).every((b) => b === 0));
});

test("a carried edge is dropped, not written, when a write in flight failed", async (t) => {
  if (noAlignedBuffers(t)) return;
  const dir = tempDir(t);
  const path = join(dir, "out");
  writeFileSync(path, Buffer.alloc(4 * DIRECT_ALIGN));
  const fd = openSync(path, "r+");
  const readOnly = openSync(path, "r"); // the aligned middle's write fails: EBADF
  try {
    const bufs = new BatchBuffers();
    const buf = bufs.aligned(2 * DIRECT_ALIGN + 10, true);
    buf.fill(0xaa);
    const w = writeDirectAsync(fd, readOnly, buf, 0, 2 * DIRECT_ALIGN + 10, 0, bufs.carry);
    bufs.writing(w);
    await assert.rejects(bufs.settle(), { code: "EBADF" });
    bufs.wipe();
  } finally {
    closeSync(readOnly);
    closeSync(fd);
  }
  assert.ok(
    readFileSync(path).every((b) => b === 0),
    "the carried tail was not written",
  );
});

test("a write in flight that fails is thrown by settle(), not lost", async (t) => {
  if (noAlignedBuffers(t)) return;
  const dir = tempDir(t);
  const path = join(dir, "out");
  writeFileSync(path, Buffer.alloc(4 * DIRECT_ALIGN));
  const fd = openSync(path, "r+");
  const readOnly = openSync(path, "r"); // the aligned middle's write fails: EBADF
  try {
    const bufs = new BatchBuffers();
    const buf = bufs.aligned(2 * DIRECT_ALIGN, false);
    bufs.writing(writeDirectAsync(fd, readOnly, buf, 0, 2 * DIRECT_ALIGN, 0));
    await assert.rejects(bufs.settle(), { code: "EBADF" });
    await bufs.settle(); // reported once; nothing is left in flight
    bufs.wipe();
  } finally {
    closeSync(readOnly);
    closeSync(fd);
  }
});

test("ready() waits for the write of the buffer it hands out next", async (t) => {
  if (noAlignedBuffers(t)) return;
  const bufs = new BatchBuffers();
  const seen = new Set<ArrayBufferLike>();
  let finished = 0;
  for (let i = 0; i < 6; i++) {
    const buf = bufs.aligned(DIRECT_ALIGN, true);
    // Buffer i % 3 is handed out again only once batch i - 3's write (and those before) finished.
    assert.ok(finished >= i - 2, `buffer ${i}: ${finished} writes finished`);
    seen.add(buf.buffer);
    bufs.writing(new Promise((r) => setTimeout(r, 5)).then(() => finished++));
    await bufs.ready();
  }
  await bufs.settle();
  assert.equal(finished, 6);
  assert.equal(seen.size, 3, "three buffers in rotation");
  bufs.wipe();
});

for (const direct of ["1", "0"]) {
  test(`sealFile/openFile round trip above the parallel threshold, direct I/O ${direct}`, async (t) => {
    const saved = process.env.TENSORSEAL_DIRECT_IO;
    process.env.TENSORSEAL_DIRECT_IO = direct;
    t.after(() => {
      if (saved === undefined) delete process.env.TENSORSEAL_DIRECT_IO;
      else process.env.TENSORSEAL_DIRECT_IO = saved;
    });
    const dir = tempDir(t);
    // Sealed batches start at unaligned offsets (header, tags); the total is unaligned too.
    for (const chunkSize of [1 << 20, 16384]) {
      const plain = data(9 * (1 << 20) + 4097);
      const input = join(dir, "in");
      writeFileSync(input, plain);
      const sealed = join(dir, `s${chunkSize}.tseal`);
      const out = join(dir, `o${chunkSize}`);
      const r = await sealFile(input, sealed, { recipients: [alice.recipient], chunkSize });
      assert.equal(readFileSync(sealed).length, r.sealedLength);
      await openFile(sealed, out, { identities: [alice.identity] });
      assert.deepEqual(readFileSync(out), plain, `chunk size ${chunkSize}`);
    }
  });
}

test("a tampered chunk in a large file: open fails and leaves no output (direct I/O)", async (t) => {
  const dir = tempDir(t);
  const plain = data(12 * (1 << 20) + 77);
  const input = join(dir, "in");
  writeFileSync(input, plain);
  const sealed = join(dir, "s.tseal");
  await sealFile(input, sealed, { recipients: [alice.recipient] });
  const bytes = readFileSync(sealed);
  bytes[bytes.length - 5 * (1 << 20)]! ^= 1; // inside a chunk near the end
  writeFileSync(sealed, bytes);
  const out = join(dir, "out");
  assert.equal(await codeOf(openFile(sealed, out, { identities: [alice.identity] })), "E_DECRYPT");
  assertNoOutput(dir, out);
});
