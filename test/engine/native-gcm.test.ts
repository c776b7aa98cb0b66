/**
 * The optional native batch AES-GCM addon must be a drop-in for the node:crypto path: the same
 * sealed bytes, each path opens the other's output, tampering fails with E_DECRYPT before any
 * plaintext of the bad batch is written to a file (opened into memory, the failing chunk is
 * wiped there), and bad lengths or offsets throw instead of crashing. processRange picks its
 * path once per process (TENSORSEAL_NATIVE), so each side runs in a child.
 * With the addon, sealing and verifying a regular file read it through a mapping (mapFile), or
 * with pread under TENSORSEAL_MMAP=0 or for anything else: both must give the same bytes and
 * errors, and a mapping must never outlive unmap() or crash the process when the file shrinks.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, constants, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
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
  chunksOffset?: number;
  /** Open into memory; `output` receives what the memory held afterwards. */
  memory?: boolean;
}

const RUNNER = `
import { closeSync, openSync, writeFileSync } from "node:fs";
const [rangeJob, batch, native, jobJson, keyHex, nonceHex] = process.argv.slice(1);
const { inputPaths, processRange } = await import(rangeJob);
const { BatchBuffers } = await import(batch);
const { nativeGcm } = await import(native);
const job = JSON.parse(jobJson);
const keys = { aeadKey: Buffer.from(keyHex, "hex"), baseNonce: Buffer.from(nonceHex, "hex") };
const inFd = openSync(job.input, "r");
// memory: opened into a buffer filled with 0xaa first, which is then written to job.output
// whatever the outcome, so the test sees exactly what reached memory.
const mem = job.memory ? new Uint8Array(job.plaintextLength).fill(0xaa) : null;
const outFd = job.output === null || mem ? null : openSync(job.output, "w");
const sink = mem
  ? { kind: "memory", buffer: mem.buffer }
  : outFd === null ? { kind: "discard" } : { kind: "fd", fd: outFd };
const spec = { chunksOffset: 0, ...job };
let result = { native: nativeGcm !== null, ok: true };
try {
  for (const _ of processRange(spec, keys, inFd, sink, new BatchBuffers()));
} catch (e) {
  result = { ...result, ok: false, code: e.code, message: e.message };
}
result.mapped = inputPaths.mapped;
closeSync(inFd);
if (outFd !== null) closeSync(outFd);
if (mem) writeFileSync(job.output, mem);
console.log(JSON.stringify(result));
`;

const key = randomBytes(32);
const baseNonce = randomBytes(12);

/**
 * Runs processRange in a child on the native (true) or node:crypto (false) path; `mmap: false`
 * keeps the native path on pread. `mapped` in the result counts the jobs that mapped the input.
 */
function runJob(native: boolean, job: Job, { mmap = true } = {}) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TENSORSEAL_NATIVE: native ? "1" : "0",
    TENSORSEAL_MMAP: mmap ? "1" : "0",
  };
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
      url("../../src/engine/batch.js"),
      url("../../src/engine/native-gcm.js"),
      JSON.stringify(job),
      key.toString("hex"),
      baseNonce.toString("hex"),
    ],
    { env, encoding: "utf8" },
  );
  const r = JSON.parse(out) as {
    native: boolean;
    ok: boolean;
    code?: string;
    message?: string;
    mapped: number;
  };
  assert.equal(r.native, native, "child ran on the wrong path");
  return r;
}

/** Runs `code` (an ES module body that may use `addon`) in a child; returns its stdout. */
function child(code: string, args: string[] = [], nodeArgs: string[] = []): string {
  const prelude = `import { createRequire } from "node:module";
const addon = createRequire(import.meta.url)(${JSON.stringify(NATIVE_ADDON_PATH)});
`;
  try {
    return execFileSync(
      process.execPath,
      [...nodeArgs, "--input-type=module", "-e", prelude + code, ...args],
      { encoding: "utf8" },
    );
  } catch (e) {
    // Say how the child ended (a signal means the addon crashed), not only the command line.
    const x = e as { status?: number | null; signal?: string | null; stderr?: string };
    throw new Error(
      `child failed: status ${x.status ?? "-"}, signal ${x.signal ?? "-"}, stderr: ${x.stderr ?? ""}`,
    );
  }
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
    for (const [mode, mmap] of [
      ["open", true],
      ["verify", true],
      ["verify", false],
    ] as const) {
      const r = runJob(
        true,
        { mode, ...whole, input: tampered, output: mode === "open" ? output : null },
        { mmap },
      );
      assert.equal(r.ok, false, what);
      assert.equal(r.code, "E_DECRYPT", what);
      assert.equal(r.message, `chunk ${k} failed authentication: the file was modified`);
      // Verifying reads through a mapping; opening never does (see range-job.ts).
      assert.equal(r.mapped, mode === "verify" && mmap ? 1 : 0, `${what}: ${mode}`);
    }
    // Only batches before the failing one reach the output.
    assert.equal(statSync(output).size, k < 512 ? 0 : 512 * cs, what);
  }
});

test("both paths open into memory at plaintext offsets and wipe a failing chunk there", {
  skip,
}, (t) => {
  const dir = tempDir(t);
  const cs = 16384;
  const len = (9 << 20) + 999; // batch 1 = chunks 0..511, batch 2 = 512..576
  const plain = data(len);
  const input = join(dir, "plain");
  writeFileSync(input, plain);
  const sealed = join(dir, "sealed");
  const whole = { chunkSize: cs, plaintextLength: len };
  assert.ok(
    runJob(true, { mode: "seal", ...whole, firstChunk: 0, endChunk: 577, input, output: sealed })
      .ok,
  );
  const memOut = join(dir, "memory");
  const untouched = (b: Buffer) => b.every((x) => x === 0xaa);
  for (const native of [true, false]) {
    // The whole range, and a sub-range that must land at its plaintext offset and nowhere else.
    for (const [firstChunk, endChunk] of [
      [0, 577],
      [13, 541],
    ] as const) {
      const range = { mode: "open" as const, ...whole, firstChunk, endChunk, input: sealed };
      const r = runJob(native, { ...range, output: memOut, memory: true });
      assert.ok(r.ok, r.message);
      assert.equal(r.mapped, 0, "opening into memory must not map its input");
      const mem = readFileSync(memOut);
      const [from, to] = [firstChunk * cs, Math.min(endChunk * cs, len)];
      assert.ok(mem.subarray(from, to).equals(plain.subarray(from, to)), `${native} ${from}`);
      assert.ok(untouched(mem.subarray(0, from)) && untouched(mem.subarray(to)), `${native}`);
    }
    const good = readFileSync(sealed);
    for (const k of [3, 576]) {
      const bad = Buffer.from(good);
      bad[k * (cs + TAG_SIZE) + 100]! ^= 1;
      const tampered = join(dir, "tampered");
      writeFileSync(tampered, bad);
      const job = { mode: "open" as const, ...whole, firstChunk: 0, endChunk: 577 };
      const r = runJob(native, { ...job, input: tampered, output: memOut, memory: true });
      assert.equal(r.code, "E_DECRYPT", `${native} chunk ${k}`);
      assert.equal(r.message, `chunk ${k} failed authentication: the file was modified`);
      const mem = readFileSync(memOut);
      // Chunks before k authenticated; chunk k is wiped; nothing after it was opened.
      assert.ok(mem.subarray(0, k * cs).equals(plain.subarray(0, k * cs)), `${native} ${k}`);
      const failed = mem.subarray(k * cs, Math.min((k + 1) * cs, len));
      assert.ok(
        failed.every((x) => x === 0),
        `${native}: chunk ${k} not wiped`,
      );
      assert.ok(untouched(mem.subarray((k + 1) * cs)), `${native}: opened past chunk ${k}`);
    }
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
    assert.equal(r.mapped, 0, "a file shorter than the range is read with pread, not mapped");
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

test("mapped and pread native paths seal identical bytes and verify each other's", {
  skip,
}, (t) => {
  const dir = tempDir(t);
  for (const { cs, len } of [...CASES, { cs: 10000, len: (9 << 20) + 4321 }]) {
    const plain = data(len);
    const input = join(dir, "plain");
    writeFileSync(input, plain);
    const whole = { chunkSize: cs, plaintextLength: len, firstChunk: 0 };
    const endChunk = chunkCount(cs, len);
    const variants = [
      { native: true, mmap: true },
      { native: true, mmap: false },
      { native: false, mmap: true },
    ];
    const outs = variants.map(({ native, mmap }, i) => {
      const output = join(dir, `sealed-${i}`);
      const r = runJob(native, { mode: "seal", ...whole, endChunk, input, output }, { mmap });
      assert.ok(r.ok, r.message);
      // An empty payload has nothing to map.
      assert.equal(r.mapped, native && mmap && len > 0 ? 1 : 0, `mapped (${cs}, ${len})`);
      return output;
    });
    const mappedBytes = readFileSync(outs[0]!);
    assert.ok(mappedBytes.equals(readFileSync(outs[1]!)), `mapped != pread (${cs}, ${len})`);
    assert.ok(mappedBytes.equals(readFileSync(outs[2]!)), `mapped != node:crypto (${cs}, ${len})`);
    // The mapped verify accepts what pread and node:crypto sealed, and opening it (pread) gives
    // the plaintext back.
    for (const from of outs) {
      const r = runJob(true, { mode: "verify", ...whole, endChunk, input: from, output: null });
      assert.ok(r.ok, r.message);
      assert.equal(r.mapped, 1);
    }
    const opened = join(dir, "opened");
    const r = runJob(true, { mode: "open", ...whole, endChunk, input: outs[0]!, output: opened });
    assert.ok(r.ok, r.message);
    assert.equal(r.mapped, 0, "opening must not map its input");
    assert.ok(readFileSync(opened).equals(plain));
  }
});

test("mapped sub-ranges at offsets that are not page-aligned match pread", { skip }, (t) => {
  const dir = tempDir(t);
  const cs = 10000; // chunk k starts at 10000 * k (plaintext), 21 + 10016 * k (sealed)
  const len = 50 * cs + 77;
  const chunksOffset = 21;
  const plain = data(len);
  const input = join(dir, "plain");
  writeFileSync(input, plain);
  const whole = { chunkSize: cs, plaintextLength: len, chunksOffset };
  const sealed = join(dir, "sealed");
  assert.ok(
    runJob(false, { mode: "seal", ...whole, firstChunk: 0, endChunk: 51, input, output: sealed })
      .ok,
  );
  for (const [firstChunk, endChunk] of [
    [13, 41],
    [1, 2],
    [49, 51],
    [50, 51],
  ] as const) {
    const range = { ...whole, firstChunk, endChunk };
    const outs = [true, false].map((mmap) => {
      const output = join(dir, `out-${mmap}`);
      const r = runJob(true, { mode: "seal", ...range, input, output }, { mmap });
      assert.ok(r.ok, r.message);
      assert.equal(r.mapped, mmap ? 1 : 0);
      return readFileSync(output);
    });
    assert.ok(outs[0]!.equals(outs[1]!), `[${firstChunk}, ${endChunk})`);
    // The sealed range, at its absolute offset, is the reference's.
    const from = chunksOffset + firstChunk * (cs + TAG_SIZE);
    assert.ok(outs[0]!.subarray(from).equals(readFileSync(sealed).subarray(from, outs[0]!.length)));
    const r = runJob(true, { mode: "verify", ...range, input: sealed, output: null });
    assert.ok(r.ok, r.message);
    assert.equal(r.mapped, 1);
  }
  // mapFile itself at offsets around page boundaries: the view is exactly the file's bytes.
  const gcm = addon!;
  const fd = openSync(input, "r");
  try {
    for (const [offset, length] of [
      [0, 1],
      [1, 4095],
      [4095, 2],
      [4096, 4096],
      [4097, 100_000],
      [12_345, len - 12_345],
      [len - 1, 1],
    ] as const) {
      const ab = gcm.mapFile(fd, offset, length);
      assert.equal(ab.byteLength, length);
      assert.ok(Buffer.from(ab).equals(plain.subarray(offset, offset + length)), `${offset}`);
      assert.equal(gcm.unmap(ab), true);
    }
  } finally {
    closeSync(fd);
  }
});

test("an input that is not a regular file is read with pread, never mapped", { skip }, (t) => {
  const dir = tempDir(t);
  const cs = 16384;
  const len = 3 * cs + 5;
  // /dev/zero: a character device that pread reads; it must seal like a file of zeros.
  const zeros = join(dir, "zeros");
  writeFileSync(zeros, Buffer.alloc(len));
  const job = { chunkSize: cs, plaintextLength: len, firstChunk: 0, endChunk: 4 };
  const fromDevice = runJob(true, {
    mode: "seal",
    ...job,
    input: "/dev/zero",
    output: join(dir, "a"),
  });
  assert.ok(fromDevice.ok, fromDevice.message);
  assert.equal(fromDevice.mapped, 0);
  const fromFile = runJob(true, { mode: "seal", ...job, input: zeros, output: join(dir, "b") });
  assert.equal(fromFile.mapped, 1);
  assert.ok(readFileSync(join(dir, "a")).equals(readFileSync(join(dir, "b"))));
  // mapFile refuses a FIFO and a device outright, and bad arguments, with no mapping made.
  const gcm = addon!;
  const fifo = join(dir, "fifo");
  execFileSync("mkfifo", [fifo]);
  const fifoFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const devFd = openSync("/dev/zero", "r");
  const fileFd = openSync(zeros, "r");
  try {
    assert.throws(() => gcm.mapFile(fifoFd, 0, 1), { code: "ERR_TSEAL_MAP" });
    assert.throws(() => gcm.mapFile(devFd, 0, 1), { code: "ERR_TSEAL_MAP" });
    assert.throws(() => gcm.mapFile(fileFd, 0, len + 1), RangeError); // past the end
    assert.throws(() => gcm.mapFile(fileFd, len, 1), RangeError);
    assert.throws(() => gcm.mapFile(fileFd, 0, 0), RangeError);
    assert.throws(() => gcm.mapFile(fileFd, -1, 1), RangeError);
    assert.throws(() => gcm.mapFile(fileFd, 0.5, 1), RangeError);
    assert.throws(() => gcm.mapFile(fileFd, 2 ** 53, 1), RangeError);
    assert.throws(() => gcm.mapFile(-1, 0, 1), RangeError);
    assert.throws(() => gcm.mapFile("3" as unknown as number, 0, 1), TypeError);
    assert.throws(() => (gcm.mapFile as (...a: unknown[]) => ArrayBuffer)(fileFd, 0), TypeError);
    assert.throws(() => gcm.mapFile(2 ** 31 - 1, 0, 1), { code: "ERR_TSEAL_MAP" }); // EBADF
  } finally {
    for (const fd of [fifoFd, devFd, fileFd]) closeSync(fd);
  }
});

test("unmap detaches: the buffer then reads as empty and the addon refuses it", { skip }, (t) => {
  const dir = tempDir(t);
  const gcm = addon!;
  const cs = 16384;
  const plain = data(4 * cs);
  const input = join(dir, "plain");
  writeFileSync(input, plain);
  const fd = openSync(input, "r");
  try {
    const ab = gcm.mapFile(fd, 100, 2 * cs);
    const view = new Uint8Array(ab);
    const sealed = Buffer.alloc(2 * cs + 2 * TAG_SIZE);
    gcm.sealBatch(key, baseNonce, 0, 2, cs, view, 0, 2 * cs, sealed, 0);
    const expect = Buffer.alloc(sealed.length);
    gcm.sealBatch(key, baseNonce, 0, 2, cs, plain.subarray(100), 0, 2 * cs, expect, 0);
    assert.ok(sealed.equals(expect));
    assert.equal(gcm.unmap(ab), true);
    assert.equal(ab.byteLength, 0);
    assert.equal(view.length, 0);
    assert.equal(view[0], undefined);
    assert.throws(
      () => gcm.sealBatch(key, baseNonce, 0, 2, cs, view, 0, 2 * cs, sealed, 0),
      RangeError,
    );
    assert.throws(() => new Uint8Array(ab), TypeError); // V8: cannot construct on detached
    assert.equal(gcm.unmap(ab), false, "a second unmap is a no-op");
    assert.throws(() => gcm.unmap(new ArrayBuffer(16)), TypeError); // not ours
    assert.throws(() => gcm.unmap(view as unknown as ArrayBuffer), TypeError);
    assert.throws(() => gcm.unmap(plain.buffer as ArrayBuffer), TypeError);
  } finally {
    closeSync(fd);
  }
});

test("mappings are released by GC, work in worker threads, and survive a worker's exit", {
  skip,
}, (t) => {
  const dir = tempDir(t);
  const input = join(dir, "plain");
  writeFileSync(input, data(1 << 20));
  const out = child(
    `import { openSync, readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
const file = process.argv[1];
const count = () => readFileSync("/proc/self/maps", "utf8").split("\\n").filter((l) => l.endsWith(file)).length;
const fd = openSync(file, "r");
for (let i = 0; i < 50; i++) addon.mapFile(fd, i, 1000);
const before = count();
for (let i = 0; i < 10 && count() > 0; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
const workerCode = \`
  const { parentPort, workerData } = require("node:worker_threads");
  const addon = require(workerData.addon);
  const key = Buffer.alloc(32, 1), nonce = Buffer.alloc(12, 2);
  const ab = addon.mapFile(workerData.fd, 5, 65536);
  const out = Buffer.alloc(65536 + 16);
  addon.sealBatch(key, nonce, 0, 1, 65536, new Uint8Array(ab), 0, 65536, out, 0);
  addon.unmap(ab);
  addon.mapFile(workerData.fd, 0, 4096); // left mapped: released when the worker ends
  parentPort.postMessage(out.toString("hex"));\`;
const w = new Worker(workerCode, { eval: true, execArgv: [], workerData: { fd, addon: ${JSON.stringify(NATIVE_ADDON_PATH)} } });
const fromWorker = await new Promise((res, rej) => { w.once("message", res); w.once("error", rej); });
await new Promise((r) => w.once("exit", r));
const key = Buffer.alloc(32, 1), nonce = Buffer.alloc(12, 2);
const out = Buffer.alloc(65536 + 16);
addon.sealBatch(key, nonce, 0, 1, 65536, readFileSync(file).subarray(5, 5 + 65536), 0, 65536, out, 0);
console.log(JSON.stringify({ before, after: count(), same: out.toString("hex") === fromWorker, left: count() }));`,
    [input],
    ["--expose-gc"],
  );
  const r = JSON.parse(out) as { before: number; after: number; same: boolean; left: number };
  assert.equal(r.before, 50);
  assert.equal(r.after, 0, "unreferenced mappings were not unmapped by GC");
  assert.ok(r.same, "a worker thread's mapped seal differs");
  assert.equal(r.left, 0, "a mapping left open in a worker outlived it");
});

test("a file that shrinks under a mapping throws instead of crashing (SIGBUS)", { skip }, (t) => {
  const dir = tempDir(t);
  const out = child(
    `import { ftruncateSync, openSync, writeFileSync } from "node:fs";
const file = process.argv[1];
const cs = 1 << 20;
const key = Buffer.alloc(32, 1), nonce = Buffer.alloc(12, 2);
// Three sealed chunks of cs - 16 plaintext bytes: each chunk is cs bytes in the file.
const sealed = Buffer.alloc(3 * cs);
addon.sealBatch(key, nonce, 0, 3, cs - 16, Buffer.alloc(3 * cs - 48, 7), 0, 3 * cs - 48, sealed, 0);
writeFileSync(file, sealed);
const fd = openSync(file, "r+");
const result = {};
const ab = addon.mapFile(fd, 0, 3 * cs);
const view = new Uint8Array(ab);
result.before = addon.openBatch(key, nonce, 0, 3, cs - 16, view, 0, 3 * cs, null, 0);
ftruncateSync(fd, 2 * cs + 100); // chunk 2 is cut short: its pages past the end now SIGBUS
try { addon.sealBatch(key, nonce, 0, 3, cs, view, 0, 3 * cs, Buffer.alloc(3 * cs + 48), 0); }
catch (e) { result.seal = e.code; }
const dst = Buffer.alloc(3 * cs - 48, 0xaa);
try { addon.openBatch(key, nonce, 0, 3, cs - 16, view, 0, 3 * cs, dst, 0); }
catch (e) { result.open = e.code; result.wiped = dst.every((b) => b === 0); }
try { addon.openBatch(key, nonce, 0, 3, cs - 16, view, 0, 3 * cs, null, 0); }
catch (e) { result.verify = e.code; }
// The bytes that still exist remain readable through the addon.
result.stillOpens = addon.openBatch(key, nonce, 0, 2, cs - 16, view, 0, 2 * cs, null, 0);
result.unmapped = addon.unmap(ab);
console.log(JSON.stringify(result));`,
    [join(dir, "sealed")],
  );
  assert.deepEqual(JSON.parse(out), {
    before: 3 * (1 << 20) - 48,
    seal: "ERR_TSEAL_INPUT_CHANGED",
    open: "ERR_TSEAL_INPUT_CHANGED",
    wiped: true,
    verify: "ERR_TSEAL_INPUT_CHANGED",
    stillOpens: 2 * (1 << 20) - 32,
    unmapped: true,
  });
});
