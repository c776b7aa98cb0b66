/**
 * openToMemory on the engine's worker pool: the same bytes on one thread and several, the pool's
 * threads reused by a second load, and a chunk modified anywhere (a worker's piece or the main
 * thread's) fails with E_DECRYPT, returns nothing, and leaves the shared output wiped with no job
 * still writing to it.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { closeWorkers, inspectFile, openToMemory, sealFile } from "../../src/engine/index.js";
import { workerPool } from "../../src/engine/pool.js";
import { PAYLOAD_PREFIX_SIZE, TAG_SIZE } from "../../src/format/chunked.js";
import { codeOf, data, makeKey, tempDir } from "./helpers.js";

after(() => closeWorkers());

const alice = makeKey("alice");
const cs = 1 << 20;
// 66 chunks: two threads (each takes >= 32 MiB), three pieces of 22 chunks. The pool runner
// takes piece 0 and the main thread piece 1 (runRanges posts pool jobs first).
const LENGTH = (65 << 20) + 12345;

async function sealedModel(t: { after: (fn: () => void) => void }) {
  const dir = tempDir(t);
  const plain = data(LENGTH);
  writeFileSync(join(dir, "plain"), plain);
  const path = join(dir, "m.tseal");
  await sealFile(join(dir, "plain"), path, { recipients: [alice.recipient], chunkSize: cs });
  return { dir, plain, path };
}

test("one thread and the pool give the same bytes; a second load reuses the pool", async (t) => {
  const { plain, path } = await sealedModel(t);
  const one = await openToMemory(path, { identities: [alice.identity], threads: 1 });
  assert.ok(!(one.buffer instanceof SharedArrayBuffer), "one thread: a private buffer");
  assert.ok(Buffer.from(one.buffer).equals(plain));
  const first = await openToMemory(path, { identities: [alice.identity], threads: 2 });
  assert.ok(first.buffer instanceof SharedArrayBuffer, "written by a pool thread: shared");
  assert.ok(Buffer.from(first.buffer).equals(plain));
  assert.ok(workerPool.size >= 1, "the pool ran a piece");
  const started = workerPool.started;
  const second = await openToMemory(path, { identities: [alice.identity], threads: 2 });
  assert.ok(Buffer.from(second.buffer).equals(plain));
  assert.equal(workerPool.started, started, "the second load started no thread");
  assert.equal(second.header.descriptor.plaintextLength, LENGTH);
});

test("a modified chunk in any piece: E_DECRYPT, nothing returned, the output wiped", async (t) => {
  const { dir, path } = await sealedModel(t);
  const { headerLength } = await inspectFile(path);
  const good = readFileSync(path);
  const zeros = Buffer.alloc(LENGTH);
  // Catch the output buffer (the only shared one of the plaintext's size) to look at it after.
  const outputs: SharedArrayBuffer[] = [];
  const Real = globalThis.SharedArrayBuffer;
  class Spy extends Real {
    constructor(n: number) {
      super(n);
      if (n === LENGTH) outputs.push(this);
    }
  }
  globalThis.SharedArrayBuffer = Spy as SharedArrayBufferConstructor;
  t.after(() => {
    globalThis.SharedArrayBuffer = Real;
  });
  // Chunk 10: the pool's piece; 33: the main thread's; 65 (the final one): whoever is free.
  for (const k of [10, 33, 65]) {
    const bad = Buffer.from(good);
    bad[headerLength + PAYLOAD_PREFIX_SIZE + k * (cs + TAG_SIZE) + 7]! ^= 0x40;
    const tampered = join(dir, `bad-${k}.tseal`);
    writeFileSync(tampered, bad);
    outputs.length = 0;
    const load = openToMemory(tampered, { identities: [alice.identity], threads: 2 });
    assert.equal(await codeOf(load), "E_DECRYPT", `chunk ${k}`);
    assert.equal(outputs.length, 1, "the load allocated one shared output");
    const out = Buffer.from(outputs[0]!);
    assert.ok(out.equals(zeros), `chunk ${k}: output not wiped`);
    // Every job was awaited before the wipe: nothing writes into the buffer afterwards.
    await sleep(50);
    assert.ok(out.equals(zeros), `chunk ${k}: written after the wipe`);
  }
});
