/**
 * The optional native batch AES-GCM addon must be a drop-in for the node:crypto path: the same
 * sealed bytes, each path opens the other's output, tampering fails with E_DECRYPT before any
 * plaintext of the bad batch is written, and bad lengths or offsets throw instead of crashing.
 * processRange picks its path once per process (TENSORSEAL_NATIVE), so each side runs in a child.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { test } from "node:test";
import { NATIVE_ADDON_PATH, type NativeGcm, nativeGcm } from "../../src/engine/native-gcm.js";
import { sealChunk, TAG_SIZE } from "../../src/format/chunked.js";
import { data, tempDir } from "./helpers.js";

/** Loaded directly, so these tests run even where TENSORSEAL_NATIVE=0 turned the engine's off. */
function loadAddon(): NativeGcm | null {
  try {
    return createRequire(import.meta.url)(NATIVE_ADDON_PATH) as NativeGcm;
  } catch {
    return null;
  }
}
const addon = loadAddon();
const inCi = process.env["TENSORSEAL_REQUIRE_ALL"] === "1";
const skip = addon
  ? false
  : `native addon not built (${NATIVE_ADDON_PATH}); run npm run build:native`;

const notCi = inCi ? false : "only checked in CI (TENSORSEAL_REQUIRE_ALL=1)";

test("the native addon is loaded in CI", { skip: notCi }, () => {
  assert.ok(addon, `TENSORSEAL_REQUIRE_ALL=1 but ${NATIVE_ADDON_PATH} did not load`);
  if (process.env["TENSORSEAL_NATIVE"] !== "0") assert.ok(nativeGcm, "engine is not using it");
});

interface Job {
  mode: "seal" | "open" | "verify";
  chunkSize: number;
  plaintextLength: number;
  firstChunk: number;
  endChunk: number;
  input: string;
  output: string | null;
}

const RUNNER = `
import { closeSync, openSync } from "node:fs";
const [rangeJob, native, jobJson, keyHex, nonceHex] = process.argv.slice(1);
const { BatchBuffers, processRange } = await import(rangeJob);
const { nativeGcm } = await import(native);
const job = JSON.parse(jobJson);
const keys = { aeadKey: Buffer.from(keyHex, "hex"), baseNonce: Buffer.from(nonceHex, "hex") };
const inFd = openSync(job.input, "r");
const outFd = job.output === null ? null : openSync(job.output, "w");
const spec = { ...job, chunksOffset: 0 };
let result = { native: nativeGcm !== null, ok: true };
try {
  for (const _ of processRange(spec, keys, inFd, outFd, new BatchBuffers()));
} catch (e) {
  result = { ...result, ok: false, code: e.code, message: e.message };
}
closeSync(inFd);
if (outFd !== null) closeSync(outFd);
console.log(JSON.stringify(result));
`;

const key = randomBytes(32);
const baseNonce = randomBytes(12);

/** Runs processRange in a child on the native (true) or node:crypto (false) path. */
function runJob(native: boolean, job: Job) {
  const env: NodeJS.ProcessEnv = { ...process.env, TENSORSEAL_NATIVE: native ? "1" : "0" };
  // The native child must not silently fall back.
  if (native) env["TENSORSEAL_REQUIRE_ALL"] = "1";
  else delete env["TENSORSEAL_REQUIRE_ALL"];
  const url = (p: string) => new URL(p, import.meta.url).href;
  const out = execFileSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      RUNNER,
      url("../../src/engine/range-job.js"),
      url("../../src/engine/native-gcm.js"),
      JSON.stringify(job),
      key.toString("hex"),
      baseNonce.toString("hex"),
    ],
    { env, encoding: "utf8" },
  );
  const r = JSON.parse(out) as { native: boolean; ok: boolean; code?: string; message?: string };
  assert.equal(r.native, native, "child ran on the wrong path");
  return r;
}

const chunkCount = (cs: number, len: number) => Math.floor(len / cs) + 1;

const CASES = [
  { cs: 16384, len: (9 << 20) + 123 }, // two batches, short final chunk
  { cs: 16384, len: 65536 }, // empty final chunk
  { cs: 1 << 20, len: (3 << 20) + 5 },
  { cs: 16384, len: 0 },
];

test("native and node:crypto paths seal identical bytes and open each other's", { skip }, (t) => {
  const dir = tempDir(t);
  for (const { cs, len } of CASES) {
    const plain = data(len);
    const input = join(dir, `plain-${cs}-${len}`);
    writeFileSync(input, plain);
    const whole = { chunkSize: cs, plaintextLength: len, firstChunk: 0 };
    const endChunk = chunkCount(cs, len);
    const sealed = { native: join(dir, "n.sealed"), js: join(dir, "j.sealed") };
    for (const native of [true, false]) {
      const output = native ? sealed.native : sealed.js;
      assert.ok(runJob(native, { mode: "seal", ...whole, endChunk, input, output }).ok);
    }
    const bytes = readFileSync(sealed.native);
    assert.equal(bytes.length, len + endChunk * TAG_SIZE);
    assert.ok(bytes.equals(readFileSync(sealed.js)), `sealed bytes differ (cs ${cs}, ${len} B)`);
    // Chunk 0 and the final chunk against format/chunked.ts's reference sealChunk.
    const ref = { aeadKey: key, baseNonce, commitment: Buffer.alloc(32) };
    const last = endChunk - 1;
    assert.ok(
      bytes
        .subarray(0, Math.min(cs, len) + TAG_SIZE)
        .equals(sealChunk(ref, 0, plain.subarray(0, cs))),
    );
    assert.ok(
      bytes
        .subarray(last * (cs + TAG_SIZE))
        .equals(sealChunk(ref, last, plain.subarray(last * cs))),
    );
    // Each path opens (and verifies) the other's output.
    for (const native of [true, false]) {
      const from = native ? sealed.js : sealed.native;
      const output = join(dir, "opened");
      assert.ok(runJob(native, { mode: "open", ...whole, endChunk, input: from, output }).ok);
      assert.ok(readFileSync(output).equals(plain));
      assert.ok(
        runJob(native, { mode: "verify", ...whole, endChunk, input: from, output: null }).ok,
      );
    }
  }
});

test("a sub-range starting past chunk 0 matches too", { skip }, (t) => {
  const dir = tempDir(t);
  const cs = 16384;
  const len = 40 * cs + 7;
  const input = join(dir, "plain");
  writeFileSync(input, data(len));
  const job = { mode: "seal" as const, chunkSize: cs, plaintextLength: len, input };
  const outs = [true, false].map((native) => {
    const output = join(dir, `out-${native}`);
    // processRange writes at absolute offsets: chunks 13..40 land after a hole.
    assert.ok(runJob(native, { ...job, firstChunk: 13, endChunk: 41, output }).ok);
    return readFileSync(output);
  });
  assert.ok(outs[0]!.equals(outs[1]!));
});

test("native open: tampering fails with E_DECRYPT and the bad batch is not written", {
  skip,
}, (t) => {
  const dir = tempDir(t);
  const cs = 16384;
  const len = (9 << 20) + 999; // batch 1 = chunks 0..511, batch 2 = 512..576
  const input = join(dir, "plain");
  writeFileSync(input, data(len));
  const sealed = join(dir, "sealed");
  const whole = {
    chunkSize: cs,
    plaintextLength: len,
    firstChunk: 0,
    endChunk: chunkCount(cs, len),
  };
  assert.ok(runJob(true, { mode: "seal", ...whole, input, output: sealed }).ok);
  const good = readFileSync(sealed);
  const at = (k: number) => k * (cs + TAG_SIZE);
  const flips = [
    { k: 3, pos: at(3) + cs + 5, what: "tag byte" },
    { k: 3, pos: at(3) + 100, what: "ciphertext byte" },
    { k: 576, pos: at(576) + 20, what: "final chunk ciphertext" },
    { k: 576, pos: good.length - 1, what: "final tag byte" },
  ];
  for (const { k, pos, what } of flips) {
    const bad = Buffer.from(good);
    bad[pos]! ^= 0x01;
    const tampered = join(dir, "tampered");
    writeFileSync(tampered, bad);
    const output = join(dir, "opened");
    for (const mode of ["open", "verify"] as const) {
      const r = runJob(true, {
        mode,
        ...whole,
        input: tampered,
        output: mode === "open" ? output : null,
      });
      assert.equal(r.ok, false, what);
      assert.equal(r.code, "E_DECRYPT", what);
      assert.equal(r.message, `chunk ${k} failed authentication: the file was modified`);
    }
    // Only batches before the failing one reach the output.
    assert.equal(statSync(output).size, k < 512 ? 0 : 512 * cs, what);
  }
});

test("openBatch wipes the failed chunk and reports its absolute index", { skip }, () => {
  const gcm = addon!;
  const cs = 16384;
  const plain = data(3 * cs + 10);
  const sealed = Buffer.alloc(plain.length + 4 * TAG_SIZE);
  assert.equal(
    gcm.sealBatch(key, baseNonce, 7, 4, cs, plain, 0, plain.length, sealed, 0),
    sealed.length,
  );
  const out = Buffer.alloc(plain.length);
  assert.equal(
    gcm.openBatch(key, baseNonce, 7, 4, cs, sealed, 0, sealed.length, out, 0),
    plain.length,
  );
  assert.ok(out.equals(plain));
  assert.equal(
    gcm.openBatch(key, baseNonce, 7, 4, cs, sealed, 0, sealed.length, null, 0),
    plain.length,
  );
  // Wrong first index = wrong nonces: chunk 8 (the first one tried) fails.
  assert.equal(gcm.openBatch(key, baseNonce, 8, 4, cs, sealed, 0, sealed.length, out, 0), -1 - 8);
  sealed[2 * (cs + TAG_SIZE) + 1]! ^= 0x80;
  out.fill(0xaa);
  assert.equal(gcm.openBatch(key, baseNonce, 7, 4, cs, sealed, 0, sealed.length, out, 0), -1 - 9);
  assert.ok(out.subarray(0, 2 * cs).equals(plain.subarray(0, 2 * cs)));
  assert.ok(
    out.subarray(2 * cs, 3 * cs).every((b) => b === 0),
    "failed chunk not wiped",
  );
  assert.equal(gcm.openBatch(key, baseNonce, 7, 4, cs, sealed, 0, sealed.length, null, 0), -1 - 9);
});

test("sealInPlace/openInPlace match sealBatch/openBatch in the sealed layout", { skip }, () => {
  const gcm = addon!;
  const cs = 16384;
  for (const len of [3 * cs + 10, 3 * cs, 1]) {
    const count = chunkCount(cs, len);
    const plain = data(len);
    const sealed = Buffer.alloc(len + count * TAG_SIZE);
    gcm.sealBatch(key, baseNonce, 41, count, cs, plain, 0, len, sealed, 0);
    // The plaintext slots of a sealed-layout buffer, at a non-zero offset.
    const buf = Buffer.alloc(sealed.length + 9);
    const slot = (i: number) => 9 + i * (cs + TAG_SIZE);
    for (let i = 0; i < count; i++) plain.copy(buf, slot(i), i * cs, Math.min((i + 1) * cs, len));
    assert.equal(
      gcm.sealInPlace(key, baseNonce, 41, count, cs, buf, 9, sealed.length),
      sealed.length,
    );
    assert.ok(buf.subarray(9).equals(sealed));
    assert.equal(gcm.openInPlace(key, baseNonce, 41, count, cs, buf, 9, sealed.length), len);
    for (let i = 0; i < count; i++) {
      const n = Math.min(cs, len - i * cs);
      assert.ok(buf.subarray(slot(i), slot(i) + n).equals(plain.subarray(i * cs, i * cs + n)));
    }
  }
  const sealed = Buffer.alloc(2 * cs + 2 * TAG_SIZE);
  gcm.sealBatch(key, baseNonce, 0, 2, cs, data(2 * cs), 0, 2 * cs, sealed, 0);
  sealed[cs + TAG_SIZE + 3]! ^= 1;
  assert.equal(gcm.openInPlace(key, baseNonce, 0, 2, cs, sealed, 0, sealed.length), -1 - 1);
  const second = sealed.subarray(cs + TAG_SIZE, 2 * cs + TAG_SIZE);
  assert.ok(
    second.every((x) => x === 0),
    "failed chunk not wiped",
  );
  const call =
    (f: "sealInPlace" | "openInPlace", ...a: unknown[]) =>
    () =>
      (gcm[f] as (...a: unknown[]) => number)(...a);
  for (const f of ["sealInPlace", "openInPlace"] as const) {
    assert.throws(call(f, key, baseNonce, 0, 2, cs, sealed, 1, sealed.length), RangeError);
    assert.throws(call(f, key, baseNonce, 0, 2, cs, sealed, 0, sealed.length + 1), RangeError);
    assert.throws(call(f, key, baseNonce, 0, 2, cs, sealed, 0, cs), RangeError); // too short for 2
    assert.throws(call(f, key, baseNonce, 0, 3, cs, sealed, 0, sealed.length), RangeError);
    assert.throws(call(f, key, baseNonce, 0, 2, cs, sealed, 0, sealed.length, null, 0), TypeError);
    assert.throws(call(f, key, baseNonce, 0, 2, cs, "buf", 0, sealed.length), TypeError);
  }
});

test("an input shorter than the range fails with E_IO on both paths", { skip }, (t) => {
  const dir = tempDir(t);
  const cs = 16384;
  const input = join(dir, "short");
  writeFileSync(input, data(5 * cs));
  const job = { chunkSize: cs, plaintextLength: 9 * cs + 1, firstChunk: 0, endChunk: 10 };
  for (const native of [true, false]) {
    const r = runJob(native, { mode: "seal", ...job, input, output: join(dir, "out") });
    assert.equal(r.code, "E_IO", r.message);
    assert.match(r.message ?? "", /input ended early/);
  }
});

test("native nonces match chunkNonce across the 32-bit boundary and up to 2^38", { skip }, () => {
  const ref = { aeadKey: key, baseNonce, commitment: Buffer.alloc(32) };
  const cs = 16384;
  const plain = data(2 * cs + 1);
  for (const first of [2 ** 32 - 2, 2 ** 37 + 12345, 2 ** 38 - 3]) {
    const sealed = Buffer.alloc(plain.length + 3 * TAG_SIZE);
    addon!.sealBatch(key, baseNonce, first, 3, cs, plain, 0, plain.length, sealed, 0);
    for (let i = 0; i < 3; i++) {
      const pt = plain.subarray(i * cs, Math.min((i + 1) * cs, plain.length));
      const at = i * (cs + TAG_SIZE);
      assert.ok(
        sealed.subarray(at, at + pt.length + TAG_SIZE).equals(sealChunk(ref, first + i, pt)),
      );
    }
  }
});

test("bounds and type violations throw instead of crashing", { skip }, () => {
  const gcm = addon!;
  const cs = 16384;
  const src = Buffer.alloc(2 * cs);
  const dst = Buffer.alloc(2 * cs + 2 * TAG_SIZE);
  type Args = Parameters<NativeGcm["sealBatch"]>;
  const ok: Args = [key, baseNonce, 0, 2, cs, src, 0, 2 * cs, dst, 0];
  assert.equal(gcm.sealBatch(...ok), dst.length);
  const bad = (i: number, v: unknown): Args => ok.map((a, j) => (j === i ? v : a)) as Args;
  const cases: [Args, typeof RangeError | typeof TypeError][] = [
    [bad(0, key.subarray(1)), RangeError],
    [bad(0, "key"), TypeError],
    [bad(1, Buffer.alloc(16)), RangeError],
    [bad(1, new Uint16Array(6)), TypeError],
    [bad(2, -1), RangeError],
    [bad(2, 0.5), RangeError],
    [bad(2, Number.NaN), RangeError],
    [bad(2, 2 ** 38 - 1), RangeError], // first + count past 2^38
    [bad(2, "0"), TypeError],
    [bad(3, 0), RangeError],
    [bad(3, 4), RangeError], // lengths do not match the count
    [bad(3, 2 ** 38), RangeError],
    [bad(4, 0), RangeError],
    [bad(4, 2 ** 31), RangeError],
    [bad(5, null), TypeError],
    [bad(6, 1), RangeError], // src range runs past the end
    [bad(6, 2 ** 53), RangeError],
    [bad(6, Number.POSITIVE_INFINITY), RangeError],
    [bad(7, 2 * cs + 1), RangeError],
    [bad(7, cs - 1), RangeError], // a short chunk before the last
    [bad(8, Buffer.alloc(dst.length - 1)), RangeError],
    [bad(8, null), TypeError], // sealing needs a destination
    [bad(9, 1), RangeError],
    [bad(9, -0.0001), RangeError],
  ];
  for (const [args, type] of cases) assert.throws(() => gcm.sealBatch(...args), type);
  // src and dst views of one buffer that overlap
  const shared = Buffer.alloc(4 * cs);
  const overlap = bad(5, shared.subarray(0, 2 * cs));
  overlap[8] = shared.subarray(cs);
  assert.throws(() => gcm.sealBatch(...overlap), /must not overlap/);
  // sealBatch(...) with too few arguments
  assert.throws(() => (gcm.sealBatch as (...a: unknown[]) => number)(key, baseNonce), TypeError);
  // Opening: the sealed side carries the tags.
  const sealed = dst;
  const out = Buffer.alloc(2 * cs);
  assert.equal(gcm.openBatch(key, baseNonce, 0, 2, cs, sealed, 0, sealed.length, out, 0), 2 * cs);
  const ob = (over: Partial<Record<number, unknown>>) => {
    const a: unknown[] = [key, baseNonce, 0, 2, cs, sealed, 0, sealed.length, out, 0];
    for (const [i, v] of Object.entries(over)) a[Number(i)] = v;
    return () => (gcm.openBatch as (...a: unknown[]) => number)(...a);
  };
  assert.throws(ob({ 7: TAG_SIZE }), RangeError); // shorter than the first tag
  assert.throws(ob({ 7: sealed.length + 1 }), RangeError);
  assert.throws(ob({ 6: 1 }), RangeError);
  assert.throws(ob({ 8: Buffer.alloc(2 * cs - 1) }), RangeError);
  assert.throws(ob({ 9: 1 }), RangeError);
  assert.throws(ob({ 8: sealed, 9: 0 }), RangeError); // overlap
  assert.throws(ob({ 3: 1 }), RangeError); // one chunk cannot hold 2 * cs
  // Offsets inside larger buffers work (views at non-zero byteOffset included).
  const big = Buffer.alloc(sealed.length + 100);
  sealed.copy(big, 37);
  const view = new Uint8Array(big.buffer, big.byteOffset + 30, sealed.length + 7);
  const out2 = Buffer.alloc(2 * cs + 3);
  assert.equal(gcm.openBatch(key, baseNonce, 0, 2, cs, view, 7, sealed.length, out2, 3), 2 * cs);
  assert.ok(out2.subarray(3).equals(out));
});
