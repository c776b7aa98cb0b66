import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { closeWorkers, inspectFile, sealFile } from "../../src/engine/index.js";
import { PAYLOAD_PREFIX_SIZE, TAG_SIZE } from "../../src/format/chunked.js";
import {
  loadSealedSafetensors,
  openSealedSafetensors,
} from "../../src/integrations/safetensors/index.js";
import { buildSafetensors, errorOf, floats, makeKey, tempDir } from "./helpers.js";

after(() => closeWorkers());

describe("loadSealedSafetensors", () => {
  const key = makeKey();
  const chunkSize = 16384;
  // 3 bytes of U8 first, so the F32 tensor after it sits at an offset that is not a multiple
  // of 4 (copied), while the header keeps the I64 one 8-aligned where the layout allows.
  const odd = Buffer.from([1, 2, 3]);
  const mixed = [
    { name: "odd", dtype: "U8", shape: [3], data: odd },
    { name: "w", dtype: "F32", shape: [2, 2], data: floats([1.5, -2, 3.25, 0]) },
    { name: "h", dtype: "BF16", shape: [3], data: Buffer.from(new Uint16Array([1, 2, 3]).buffer) },
    { name: "big", dtype: "U8", shape: [7 * chunkSize + 5], data: randomBytes(7 * chunkSize + 5) },
    {
      name: "ids",
      dtype: "I64",
      shape: [2],
      data: Buffer.from(new BigInt64Array([-1n, 7n]).buffer),
    },
  ];
  const file = buildSafetensors(mixed, { format: "pt" });

  async function sealed(t: { after: (fn: () => void) => void }, plain: Buffer): Promise<string> {
    const dir = tempDir(t);
    writeFileSync(join(dir, "m.safetensors"), plain);
    const out = join(dir, "m.tseal");
    await sealFile(join(dir, "m.safetensors"), out, { recipients: [key.recipient], chunkSize });
    return out;
  }

  /** A model large enough for several threads (each takes >= 32 MiB). */
  function bigModel(): Buffer {
    const a = randomBytes(40 << 20);
    const b = randomBytes((30 << 20) + 12);
    return buildSafetensors([
      { name: "a", dtype: "F32", shape: [a.length / 4], data: a },
      { name: "b", dtype: "F32", shape: [b.length / 4], data: b },
      { name: "c", dtype: "F16", shape: [3], data: Buffer.alloc(6, 7) },
    ]);
  }

  test("every tensor matches getTensor, aligned ones are views of one buffer", async (t) => {
    const path = await sealed(t, file);
    const all = await loadSealedSafetensors(path, [key.identity]);
    assert.deepEqual(all.metadata, { format: "pt" });
    assert.deepEqual(
      Object.keys(all.tensors),
      mixed.map((m) => m.name),
    );
    assert.equal(all.decryptedBytes, file.length);
    const lazy = await openSealedSafetensors(path, [key.identity]);
    t.after(() => lazy.close());
    for (const m of mixed) {
      const a = all.arrays.get(m.name)!;
      assert.equal(a.constructor, (await lazy.getTensor(m.name)).constructor, m.name);
      assert.ok(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(m.data), m.name);
    }
    assert.deepEqual([...(all.arrays.get("w") as Float32Array)], [1.5, -2, 3.25, 0]);
    assert.equal(all.arrays.get("big")!.buffer, all.buffer, "aligned: a view, no copy");
    assert.notEqual(all.arrays.get("w")!.buffer, all.buffer, "misaligned F32: copied");
    // The safetensors header (names, shapes) is wiped from the returned buffer.
    const n = Number(file.readBigUInt64LE(0));
    assert.ok(new Uint8Array(all.buffer, 0, 8 + n).every((b) => b === 0));
  });

  test("parallel decryption (main thread + workers) gives the same bytes", async (t) => {
    const plain = bigModel();
    const path = await sealed(t, plain);
    for (const threads of [1, 2, 3]) {
      const all = await loadSealedSafetensors(path, [key.identity], { threads });
      assert.equal(all.buffer instanceof SharedArrayBuffer, threads > 1, `threads ${threads}`);
      const n = 8 + Number(plain.readBigUInt64LE(0));
      assert.ok(
        Buffer.from(all.buffer as ArrayBuffer, n).equals(plain.subarray(n)),
        `threads ${threads}`,
      );
      assert.ok(all.arrays.get("a") instanceof Float32Array);
    }
  });

  test("a modified chunk fails with E_DECRYPT whichever thread opens it", async (t) => {
    const plain = bigModel();
    const path = await sealed(t, plain);
    const { headerLength } = await inspectFile(path);
    const sealedBytes = readFileSync(path);
    const chunks = Math.ceil(plain.length / chunkSize);
    for (const chunk of [1, Math.floor(chunks * 0.75), chunks - 1]) {
      const bad = Buffer.from(sealedBytes);
      bad[headerLength + PAYLOAD_PREFIX_SIZE + chunk * (chunkSize + TAG_SIZE) + 3]! ^= 1;
      writeFileSync(path, bad);
      const e = await errorOf(loadSealedSafetensors(path, [key.identity], { threads: 2 }));
      assert.equal(e.code, "E_DECRYPT", `chunk ${chunk}`);
    }
  });

  test("wrong key, cut file and bad options are refused", async (t) => {
    const path = await sealed(t, file);
    const other = makeKey("other");
    assert.equal(
      (await errorOf(loadSealedSafetensors(path, [other.identity]))).code,
      "E_NO_IDENTITY",
    );
    assert.equal(
      (await errorOf(loadSealedSafetensors(path, [key.identity], { threads: 0 }))).code,
      "E_USAGE",
    );
    const cut = readFileSync(path);
    writeFileSync(path, cut.subarray(0, cut.length - 20));
    assert.match(
      (await errorOf(loadSealedSafetensors(path, [key.identity]))).code,
      /E_TRUNCATED|E_DECRYPT/,
    );
  });
});
