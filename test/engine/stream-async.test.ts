/**
 * The stream paths' cipher work off the JS thread (native sealBatchAsync/openBatchAsync, used by
 * NativeStreamSealer/Opener.pushAsync): the same bytes as the synchronous calls and the
 * reference, pieces reused as the stream paths reuse them (two source buffers, two pushes in
 * flight), a tampered chunk in either half of a split batch releases nothing of it, and the
 * addon's pipe widening.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { batchAsync, nativeGcm } from "../../src/engine/native-gcm.js";
import { NativeStreamOpener } from "../../src/engine/stream-opener.js";
import { NativeStreamSealer } from "../../src/engine/stream-sealer.js";
import { SALT_SIZE } from "../../src/format/chunked.js";
import { PayloadSealer } from "../../src/format/payload.js";
import { tempDir } from "./helpers.js";

const skip = nativeGcm?.sealBatchAsync ? false : "native addon without the async batch calls";

test("CI has the async batch calls and setPipeSize (rebuild with npm run build:native)", (t) => {
  if (process.env["TENSORSEAL_REQUIRE_ALL"] !== "1" || process.env["TENSORSEAL_NATIVE"] === "0")
    return t.skip("only required in CI");
  for (const f of ["sealBatchAsync", "openBatchAsync", "setPipeSize"] as const) {
    assert.equal(typeof nativeGcm?.[f], "function", `the addon lacks ${f}: an older build`);
  }
});
const inputKey = randomBytes(32);
const salt = randomBytes(SALT_SIZE);
const context = Buffer.from("stream async test context");
const CS = 16384;

function reference(plain: Buffer, chunkSize: number): Buffer {
  const s = new PayloadSealer(inputKey, context, chunkSize, salt);
  return Buffer.concat([s.prefix, ...s.push(plain), s.finish()]);
}

/**
 * Feeds `input` through `push` as the stream paths do: each piece is copied into one of two
 * reused buffers, the next push is submitted before the previous is awaited, and a buffer is
 * overwritten as soon as the push before the previous one settled.
 */
async function feed(
  input: Buffer,
  seed: number,
  push: (b: Buffer) => Promise<Buffer[]>,
): Promise<Buffer[]> {
  const bufs = [Buffer.alloc(300_001), Buffer.alloc(300_001)];
  const out: Buffer[] = [];
  let pending: Promise<Buffer[]> | null = null;
  let step = seed;
  let turn = 0;
  for (let i = 0; i < input.length; ) {
    step = (step * 7 + 13) % 300_001 || 1;
    const piece = input.subarray(i, i + step);
    i += piece.length;
    const buf = bufs[turn++ % 2]!;
    buf.fill(0xee); // whatever the previous use left: a push still reading it would notice
    piece.copy(buf);
    const next = push(buf.subarray(0, piece.length));
    next.catch(() => {});
    if (pending) for (const b of await pending) out.push(Buffer.from(b));
    pending = next;
  }
  if (pending) for (const b of await pending) out.push(Buffer.from(b));
  return out;
}

test("async batch calls give the sync bytes, report the first failing chunk and wipe it", {
  skip,
}, async () => {
  const g = nativeGcm!;
  const key = randomBytes(32);
  const base = randomBytes(12);
  const n = 5;
  const plain = randomBytes(CS * n - 100);
  const sync = Buffer.alloc(plain.length + 16 * n);
  const async = Buffer.alloc(sync.length);
  g.sealBatch(key, base, 7, n, CS, plain, 0, plain.length, sync, 0);
  const r = await batchAsync(
    g.sealBatchAsync!,
    key,
    base,
    7,
    n,
    CS,
    plain,
    0,
    plain.length,
    async,
    0,
  );
  assert.equal(r, sync.length);
  assert.ok(async.equals(sync));
  const back = Buffer.alloc(plain.length);
  assert.equal(
    await batchAsync(g.openBatchAsync!, key, base, 7, n, CS, sync, 0, sync.length, back, 0),
    plain.length,
  );
  assert.ok(back.equals(plain));
  sync[2 * (CS + 16) + 3]! ^= 1; // chunk 7 + 2
  back.fill(0xaa);
  const bad = await batchAsync(
    g.openBatchAsync!,
    key,
    base,
    7,
    n,
    CS,
    sync,
    0,
    sync.length,
    back,
    0,
  );
  assert.equal(bad, -1 - 9);
  assert.ok(
    back.subarray(2 * CS, 3 * CS).every((b) => b === 0),
    "the failing chunk is wiped",
  );
  // Arguments are checked at the call, before anything is queued.
  assert.throws(
    () => g.sealBatchAsync!(key, base, 0, 1, CS, plain, 0, plain.length, async, 0, () => {}),
    RangeError,
  );
  assert.throws(
    () => g.sealBatchAsync!(key, base, 0, n, CS, plain, 0, plain.length, async, 0, null as never),
    TypeError,
  );
});

test("pushAsync seals and opens the reference bytes through reused buffers", { skip }, async () => {
  for (const [length, seed] of [
    [0, 1],
    [CS - 1, 2],
    [CS, 3],
    [7 * CS + 5, 4],
    [300_000 + 3, 5],
    [1_000_000, 6],
  ] as const) {
    const plain = randomBytes(length);
    const s = new NativeStreamSealer(nativeGcm!, inputKey, context, CS, salt);
    const body = await feed(plain, seed, (b) => s.pushAsync(b));
    const all = Buffer.concat([s.prefix, ...body, ...s.finish()]);
    assert.ok(all.equals(reference(plain, CS)), `seal ${length}`);
    const o = new NativeStreamOpener(nativeGcm!, inputKey, context, CS);
    const opened = await feed(all, seed + 10, (b) => o.pushAsync(b));
    const back = Buffer.concat([...opened, ...o.finish()]);
    assert.ok(back.equals(plain), `open ${length}`);
    assert.equal(o.released, length);
  }
});

test("a tampered chunk in either half of a split batch releases nothing of it", {
  skip,
}, async () => {
  const plain = randomBytes(8 * CS + 9);
  const payload = reference(plain, CS);
  const prefix = payload.length - (plain.length + 9 * 16); // salt and commitment
  for (const chunk of [0, 3, 4, 7]) {
    const bad = Buffer.from(payload);
    bad[prefix + chunk * (CS + 16) + 11]! ^= 1;
    const o = new NativeStreamOpener(nativeGcm!, inputKey, context, CS);
    // One push holding all eight whole chunks: split 4 + 4 across two pool threads.
    const released: Buffer[] = [];
    const first = o.pushAsync(bad.subarray(0, prefix + 8 * (CS + 16)));
    await assert.rejects(
      first.then((b) => released.push(...b)),
      { code: "E_DECRYPT", message: new RegExp(`chunk ${chunk} `) },
    );
    assert.equal(released.length, 0);
    await assert.rejects(o.pushAsync(bad.subarray(prefix + 8 * (CS + 16))), {
      code: "E_DECRYPT",
    });
    assert.throws(() => o.finish(), { code: "E_DECRYPT" });
  }
});

test("setPipeSize widens a pipe and refuses a regular file", { skip }, (t) => {
  const file = join(tempDir(t), "f");
  const fd = openSync(file, "w");
  try {
    assert.equal(nativeGcm!.setPipeSize!(fd, 1 << 20), -1);
  } finally {
    closeSync(fd);
  }
  // A child's stdin from a shell pipeline is a pipe (Node's own child stdio is a socket pair):
  // it widens it and reports the new capacity.
  const url = JSON.stringify(new URL("../../src/engine/native-gcm.js", import.meta.url).href);
  const r = spawnSync("bash", ["-c", ': | "$NODE" --input-type=module -e "$SCRIPT"'], {
    encoding: "utf8",
    env: {
      ...process.env,
      NODE: process.execPath,
      SCRIPT: `const { nativeGcm } = await import(${url}); console.log(nativeGcm.setPipeSize(0, 1 << 20));`,
    },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(Number(r.stdout.trim()) >= 1 << 20, r.stdout);
});
