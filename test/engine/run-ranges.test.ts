/**
 * How a parallel run cuts its chunks into pieces (engine/run-ranges.ts, nextPiece): guided
 * self-scheduling, large pieces first and job-sized ones at the end, and that a failure inside
 * one of the large pieces still stops the run and leaves no output. Also a file output on tmpfs
 * (O_DIRECT refused before Linux 6.6, accepted since): the bytes are the same either way.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { closeWorkers, openFile, sealFile } from "../../src/engine/index.js";
import { nextPiece } from "../../src/engine/run-ranges.js";
import { assertNoOutput, codeOf, data, makeKey, tempDir } from "./helpers.js";

after(() => closeWorkers());

const alice = makeKey("alice");
const MiB = 1 << 20;

function pieces(chunks: number, threads: number, chunkSize: number): number[] {
  const sizes: number[] = [];
  let claimed = 0;
  while (claimed < chunks) {
    const n = nextPiece(claimed, chunks, threads, chunkSize);
    assert.ok(n >= 1, `a piece at ${claimed} of ${chunks} is empty`);
    sizes.push(n);
    claimed += n;
  }
  assert.equal(claimed, chunks, "the pieces cover every chunk exactly once");
  assert.equal(nextPiece(chunks, chunks, threads, chunkSize), 0);
  return sizes;
}

test("1 GiB on two threads: a quarter first, 8 MiB pieces last, 16 pieces instead of 128", () => {
  const sizes = pieces(1024, 2, MiB);
  assert.equal(sizes[0], 256, "the first piece is a quarter of the run");
  assert.ok(
    sizes.every((n, i) => i === 0 || n <= sizes[i - 1]!),
    "pieces never grow",
  );
  assert.ok(sizes.at(-1)! <= 8, "the last piece is at most one job (8 MiB)");
  assert.ok(
    sizes.slice(0, -1).every((n) => n >= 8),
    "no piece but the remainder is under a job",
  );
  assert.ok(sizes.length >= 12 && sizes.length <= 24, `${sizes.length} pieces`);
});

test("small runs still split across the threads; huge chunks are one chunk a piece", () => {
  // 5 chunks of 1 MiB on 2 threads: both threads get work (3 + 2).
  assert.deepEqual(pieces(5, 2, MiB), [3, 2]);
  // 16 KiB chunks: a job is 512 chunks, the run 2,000 chunks on 4 threads.
  const small = pieces(2000, 4, 16384);
  assert.ok(small.length >= 4, "at least one piece per thread");
  assert.ok(
    small.slice(0, -1).every((n) => n >= 250),
    "no piece under an even split or a job",
  );
  // 64 MiB chunks: a job is less than a chunk, so each piece is at least one chunk.
  assert.deepEqual(pieces(3, 2, 64 * MiB), [1, 1, 1]);
});

for (const at of ["first", "last"] as const) {
  test(`a tampered chunk in the ${at} (largest or smallest) piece fails the open, no output`, async (t) => {
    const dir = tempDir(t);
    const plain = data(40 * MiB + 321);
    const input = join(dir, "in");
    writeFileSync(input, plain);
    const sealed = join(dir, "s.tseal");
    await sealFile(input, sealed, { recipients: [alice.recipient] });
    const bytes = readFileSync(sealed);
    // One worker, 41 chunks: pieces of 21, 10, 8 and 2 chunks. Chunk 1 lies in the first, the
    // byte 300,000 before the end in the last (chunk 39).
    bytes[at === "first" ? bytes.length - plain.length + MiB + 100 : bytes.length - 300_000]! ^= 1;
    writeFileSync(sealed, bytes);
    const out = join(dir, "out");
    const r = openFile(sealed, out, { identities: [alice.identity], workers: 1 });
    assert.equal(await codeOf(r), "E_DECRYPT");
    assertNoOutput(dir, out);
  });
}

const TMPFS_MAGIC = 0x01021994;
const shm = "/dev/shm";
const onTmpfs = existsSync(shm) && statfsSync(shm).type === TMPFS_MAGIC;

test("seal and open into tmpfs above the parallel threshold: same bytes", {
  skip: !onTmpfs && "no tmpfs at /dev/shm",
}, async (t) => {
  const src = tempDir(t);
  const dir = mkdtempSync(join(shm, "tseal-engine-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const plain = data(9 * MiB + 4097);
  const input = join(src, "in");
  writeFileSync(input, plain);
  const sealed = join(dir, "s.tseal");
  const reference = join(src, "ref.tseal");
  const r = await sealFile(input, sealed, { recipients: [alice.recipient] });
  assert.equal(readFileSync(sealed).length, r.sealedLength);
  await sealFile(input, reference, { recipients: [alice.recipient] });
  const out = join(dir, "out");
  await openFile(sealed, out, { identities: [alice.identity] });
  assert.ok(readFileSync(out).equals(plain));
  // And a sealed file on disk opened into tmpfs.
  const out2 = join(dir, "out2");
  await openFile(reference, out2, { identities: [alice.identity] });
  assert.ok(readFileSync(out2).equals(plain));
});
