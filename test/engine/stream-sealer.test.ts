/**
 * The native stream sealer against the reference (format/payload.ts's PayloadSealer): the same
 * bytes for every length around chunk and batch boundaries, whatever the input pieces; chunk-
 * sized outputs; keys and staged plaintext wiped at the end; no use after finish.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { nativeGcm } from "../../src/engine/native-gcm.js";
import { NativeStreamSealer } from "../../src/engine/stream-sealer.js";
import { type ChunkKeys, SALT_SIZE } from "../../src/format/chunked.js";
import { boundaryLengths, pieces, referencePayload } from "./stream-fixtures.js";

const BATCH = 8 << 20;
const inputKey = randomBytes(32);
const salt = randomBytes(SALT_SIZE);
const context = Buffer.from("stream sealer test context");

const reference = (plain: Buffer, chunkSize: number): Buffer =>
  referencePayload(inputKey, context, chunkSize, salt, plain);

test("the native stream sealer writes exactly the reference bytes around chunk and batch boundaries", (t) => {
  if (!nativeGcm) return t.skip("native addon not built (CI requires it)");
  const gcm = nativeGcm;
  for (const chunkSize of [16384, 65536, 1 << 20]) {
    const lengths = boundaryLengths(chunkSize, BATCH);
    const plain = randomBytes(Math.max(...lengths));
    for (const n of lengths) {
      const input = plain.subarray(0, n);
      const s = new NativeStreamSealer(gcm, inputKey, context, chunkSize, salt);
      const out: Buffer[] = [s.prefix];
      for (const p of pieces(input, n)) out.push(...s.push(p));
      out.push(...s.finish());
      assert.ok(
        Buffer.concat(out).equals(reference(input, chunkSize)),
        `chunk ${chunkSize}, ${n} bytes`,
      );
      // Every output after the prefix is one sealed chunk: a full one, or the final short one.
      const sealed = out.slice(1);
      assert.ok(sealed.slice(0, -1).every((c) => c.length === chunkSize + 16));
      assert.equal(sealed.at(-1)!.length, (n % chunkSize) + 16);
    }
  }
});

test("after finish the keys and the staged plaintext are wiped, and the sealer refuses more", (t) => {
  if (!nativeGcm) return t.skip("native addon not built (CI requires it)");
  const s = new NativeStreamSealer(nativeGcm, inputKey, context, 16384, salt);
  s.push(Buffer.alloc(50_000, 0xab));
  const inside = s as unknown as { keys: ChunkKeys; staging: Buffer };
  assert.ok(inside.staging.includes(0xab), "plaintext is staged before finish");
  s.finish();
  assert.ok(inside.keys.aeadKey.every((b) => b === 0));
  assert.ok(inside.keys.baseNonce.every((b) => b === 0));
  assert.ok(inside.staging.every((b) => b === 0));
  assert.throws(() => s.push(Buffer.from("x")), { code: "E_USAGE" });
  assert.throws(() => s.finish(), { code: "E_USAGE" });
});

test("whole chunks are sealed and handed on as their input arrives, not when a batch fills", (t) => {
  if (!nativeGcm) return t.skip("native addon not built (CI requires it)");
  const plain = randomBytes(3 * 16384 + 11);
  const s = new NativeStreamSealer(nativeGcm, inputKey, context, 16384, salt);
  assert.deepEqual(s.push(plain.subarray(0, 16383)), []);
  const first = s.push(plain.subarray(16383, 16384 + 5));
  assert.equal(first.length, 1, "chunk 0 is complete: it goes on now");
  const all = Buffer.concat([
    s.prefix,
    ...first,
    ...s.push(plain.subarray(16384 + 5)),
    ...s.finish(),
  ]);
  assert.ok(all.equals(reference(plain, 16384)));
});
