/**
 * The native stream opener against the reference (format/payload.ts's PayloadOpener): the same
 * plaintext for every length around chunk and batch boundaries, whatever the input pieces; the
 * same errors for tampering, truncation, trailing data and a wrong commitment; nothing of a
 * batch released when one of its chunks fails; whole chunks released as soon as they arrive.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { nativeGcm } from "../../src/engine/native-gcm.js";
import { NativeStreamOpener } from "../../src/engine/stream-opener.js";
import { SALT_SIZE } from "../../src/format/chunked.js";
import { isTensorSealError } from "../../src/format/errors.js";
import { PayloadOpener } from "../../src/format/payload.js";
import { boundaryLengths, pieces, referencePayload } from "./stream-fixtures.js";

const BATCH = 8 << 20;
const inputKey = randomBytes(32);
const salt = randomBytes(SALT_SIZE);
const context = Buffer.from("stream opener test context");

const sealed = (plain: Buffer, chunkSize: number): Buffer =>
  referencePayload(inputKey, context, chunkSize, salt, plain);

type Opener = { push(b: Buffer): Buffer[]; finish(): Buffer[] | Buffer };

/** Feeds `payload` in pieces; returns what was released and the error code, if any. */
function run(o: Opener, payload: Buffer, seed: number) {
  const out: Buffer[] = [];
  try {
    for (const p of pieces(payload, seed)) out.push(...o.push(p));
    const last = o.finish();
    out.push(...(Array.isArray(last) ? last : [last]));
    return { released: Buffer.concat(out), code: null as string | null };
  } catch (e) {
    assert.ok(isTensorSealError(e), String(e));
    return { released: Buffer.concat(out), code: e.code as string };
  }
}

const native = () => new NativeStreamOpener(nativeGcm!, inputKey, context, 16384);
const reference = (chunkSize = 16384) => new PayloadOpener(inputKey, context, chunkSize);

test("the native stream opener releases exactly the plaintext around chunk and batch boundaries", (t) => {
  if (!nativeGcm) return t.skip("native addon not built (CI requires it)");
  const gcm = nativeGcm;
  for (const chunkSize of [16384, 1 << 20]) {
    const lengths = boundaryLengths(chunkSize, BATCH);
    const plain = randomBytes(Math.max(...lengths));
    for (const n of lengths) {
      const input = plain.subarray(0, n);
      const o = new NativeStreamOpener(gcm, inputKey, context, chunkSize);
      const r = run(o, sealed(input, chunkSize), n + 1);
      assert.equal(r.code, null, `chunk ${chunkSize}, ${n} bytes`);
      assert.ok(r.released.equals(input), `chunk ${chunkSize}, ${n} bytes`);
      assert.equal(o.released, n);
    }
  }
});

test("tampering, truncation, trailing data and a wrong commitment fail as in the reference", (t) => {
  if (!nativeGcm) return t.skip("native addon not built (CI requires it)");
  const plain = randomBytes(BATCH + 5 * 16384 + 7); // more than one batch at 16 KiB chunks
  const good = sealed(plain, 16384);
  const flip = (at: number) => {
    const b = Buffer.from(good);
    b[at] = b[at]! ^ 1;
    return b;
  };
  const stride = 16384 + 16;
  const cases: [string, Buffer][] = [
    ["commitment", flip(SALT_SIZE + 3)],
    ["first chunk", flip(56 + 10)],
    ["a chunk in the middle of the first batch", flip(56 + 100 * stride + 5)],
    ["the first chunk of the second batch", flip(56 + 512 * stride + 1)],
    ["the final chunk's tag", flip(good.length - 1)],
    ["cut inside the final chunk's tag", good.subarray(0, good.length - 3)],
    ["cut at a chunk boundary", good.subarray(0, 56 + 10 * stride)],
    ["cut inside the prefix", good.subarray(0, 30)],
    ["a trailing byte", Buffer.concat([good, Buffer.from([0])])],
  ];
  for (const [what, payload] of cases) {
    const mine = run(native(), payload, 17);
    const ref = run(reference(), payload, 17);
    assert.equal(mine.code, ref.code, what);
    assert.notEqual(mine.code, null, what);
    // Only authenticated plaintext, and never more than the reference released.
    assert.ok(plain.subarray(0, mine.released.length).equals(mine.released), what);
    assert.ok(mine.released.length <= ref.released.length, what);
  }
});

test("a failing chunk releases nothing of its batch, and the opener then refuses everything", (t) => {
  if (!nativeGcm) return t.skip("native addon not built (CI requires it)");
  const plain = randomBytes(3 * 16384 + 5);
  const payload = sealed(plain, 16384);
  payload[56 + 2 * (16384 + 16) + 7]! ^= 1; // chunk 2; chunks 0 and 1 are intact
  const o = native();
  // One input holding chunks 0-2 is opened as one batch: chunk 2 fails it as a whole.
  assert.throws(() => o.push(payload), { code: "E_DECRYPT" });
  assert.throws(() => o.finish(), { code: "E_DECRYPT" });
  assert.throws(() => o.push(Buffer.from("more")), { code: "E_DECRYPT" });
  assert.throws(() => o.finish(), { code: "E_DECRYPT" });
  assert.equal(o.released, 0, "chunks 0 and 1 verified, but their batch failed");
});

test("whole chunks are released as their input arrives, not when a batch fills (slow pipes)", (t) => {
  if (!nativeGcm) return t.skip("native addon not built (CI requires it)");
  const plain = randomBytes(5 * 16384 + 9);
  const payload = sealed(plain, 16384);
  const stride = 16384 + 16;
  const o = native();
  // The prefix and half of chunk 0: nothing yet.
  assert.deepEqual(o.push(payload.subarray(0, 56 + stride / 2)), []);
  // The rest of chunk 0 and a few bytes of chunk 1: chunk 0 comes out now.
  const first = Buffer.concat(o.push(payload.subarray(56 + stride / 2, 56 + stride + 3)));
  assert.ok(first.equals(plain.subarray(0, 16384)));
  const rest = Buffer.concat([...o.push(payload.subarray(56 + stride + 3)), ...o.finish()]);
  assert.ok(Buffer.concat([first, rest]).equals(plain));
});
