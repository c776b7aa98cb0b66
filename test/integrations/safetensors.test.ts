import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { closeWorkers, sealFile } from "../../src/engine/index.js";
import {
  MAX_HEADER_SIZE,
  openSealedSafetensors,
  parseHeader,
  readHeaderLength,
} from "../../src/integrations/safetensors/index.js";
import { buildSafetensors, errorOf, floats, makeKey, rawSafetensors, tempDir } from "./helpers.js";

after(() => closeWorkers());

/** Parses a whole in-memory safetensors file the way the sealed reader does. */
function parse(file: Buffer) {
  const n = readHeaderLength(file.subarray(0, 8), file.length);
  return parseHeader(file.subarray(8, 8 + n), file.length - 8 - n);
}

function parseJson(header: unknown, dataLength: number) {
  return parse(rawSafetensors(JSON.stringify(header), Buffer.alloc(dataLength)));
}

describe("safetensors header parser", () => {
  test("accepts a reference-layout file and keeps metadata, dtypes and shapes", () => {
    const file = buildSafetensors(
      [
        { name: "a", dtype: "F32", shape: [2, 3], data: Buffer.alloc(24) },
        { name: "b", dtype: "BF16", shape: [4], data: Buffer.alloc(8) },
        { name: "empty", dtype: "I64", shape: [0, 5], data: Buffer.alloc(0) },
        { name: "scalar", dtype: "U8", shape: [], data: Buffer.alloc(1) },
      ],
      { format: "pt" },
    );
    const h = parse(file);
    assert.deepEqual(h.metadata, { format: "pt" });
    assert.deepEqual([...h.tensors.keys()], ["a", "b", "empty", "scalar"]);
    assert.deepEqual(h.tensors.get("a"), {
      dtype: "F32",
      shape: [2, 3],
      dataOffsets: [0, 24],
      byteLength: 24,
    });
    assert.equal(h.dataStart + 24 + 8 + 1, file.length);
  });

  const bad: [string, unknown, number, RegExp][] = [
    ["unknown dtype", { t: { dtype: "F128", shape: [1], data_offsets: [0, 16] } }, 16, /dtype/],
    ["wrong byte length", { t: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8, /needs 12/],
    [
      "gap between tensors",
      {
        a: { dtype: "U8", shape: [4], data_offsets: [0, 4] },
        b: { dtype: "U8", shape: [4], data_offsets: [6, 10] },
      },
      10,
      /gap of 2 bytes/,
    ],
    [
      "overlap",
      {
        a: { dtype: "U8", shape: [4], data_offsets: [0, 4] },
        b: { dtype: "U8", shape: [4], data_offsets: [2, 6] },
      },
      6,
      /overlaps/,
    ],
    ["data past the end", { t: { dtype: "U8", shape: [8], data_offsets: [0, 8] } }, 4, /past/],
    ["trailing bytes", { t: { dtype: "U8", shape: [4], data_offsets: [0, 4] } }, 9, /short/],
    ["negative dim", { t: { dtype: "U8", shape: [-1], data_offsets: [0, 0] } }, 0, /shape/],
    ["fraction dim", { t: { dtype: "U8", shape: [1.5], data_offsets: [0, 1] } }, 1, /shape/],
    ["end < begin", { t: { dtype: "U8", shape: [0], data_offsets: [4, 0] } }, 4, /end < begin/],
    ["three offsets", { t: { dtype: "U8", shape: [1], data_offsets: [0, 1, 2] } }, 1, /offsets/],
    ["metadata not strings", { __metadata__: { a: 1 } }, 0, /__metadata__/],
    ["extra field", { t: { dtype: "U8", shape: [1], data_offsets: [0, 1], x: 1 } }, 1, /unknown/],
    ["tensor not an object", { t: [1, 2] }, 0, /not an object/],
  ];
  for (const [label, header, dataLength, message] of bad) {
    test(`rejects ${label}`, async () => {
      const e = await errorOf(() => parseJson(header, dataLength));
      assert.equal(e.code, "E_MALFORMED");
      assert.match(e.message, message);
    });
  }

  test("rejects a header that is not a JSON object, not UTF-8 or not JSON", async () => {
    for (const [text, message] of [
      ["[1,2,3]   ", /start with '\{'/],
      ['{"a":', /not valid JSON/],
    ] as const) {
      const e = await errorOf(() => parse(rawSafetensors(text, Buffer.alloc(0))));
      assert.equal(e.code, "E_MALFORMED");
      assert.match(e.message, message);
    }
    const file = rawSafetensors('{"\xff":1}', Buffer.alloc(0));
    file[10] = 0xff;
    assert.match((await errorOf(() => parse(file))).message, /UTF-8/);
  });

  test("rejects header lengths over the cap, past the end, or too small before allocating", async () => {
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(MAX_HEADER_SIZE) + 1n);
    assert.match((await errorOf(() => readHeaderLength(n, 1e12))).message, /cap/);
    n.writeBigUInt64LE(2n ** 64n - 1n);
    assert.match((await errorOf(() => readHeaderLength(n, 1e12))).message, /cap/);
    n.writeBigUInt64LE(100n);
    assert.match((await errorOf(() => readHeaderLength(n, 50))).message, /past the end/);
    n.writeBigUInt64LE(1n);
    assert.match((await errorOf(() => readHeaderLength(n, 50))).message, /cannot hold/);
    assert.match((await errorOf(() => readHeaderLength(n.subarray(0, 4), 4))).message, /short/);
  });
});

describe("openSealedSafetensors", () => {
  const key = makeKey();
  const chunkSize = 16384;
  const big = randomBytes(5 * chunkSize + 100);
  const small = floats([1.5, -2, 3.25, 0]);
  const half = Buffer.from(new Uint16Array([0x3c00, 0xc000, 0x7bff]).buffer);
  const file = buildSafetensors(
    [
      { name: "embed.weight", dtype: "U8", shape: [big.length], data: big },
      { name: "norm.weight", dtype: "F32", shape: [2, 2], data: small },
      { name: "h", dtype: "F16", shape: [3], data: half },
      {
        name: "ids",
        dtype: "I64",
        shape: [2],
        data: Buffer.from(new BigInt64Array([-1n, 7n]).buffer),
      },
    ],
    { format: "pt" },
  );

  async function sealed(t: { after: (fn: () => void) => void }, plain = file): Promise<string> {
    const dir = tempDir(t);
    writeFileSync(join(dir, "m.safetensors"), plain);
    const out = join(dir, "m.safetensors.tseal");
    await sealFile(join(dir, "m.safetensors"), out, { recipients: [key.recipient], chunkSize });
    return out;
  }

  test("lists tensors from the decrypted header and returns typed arrays", async (t) => {
    const st = await openSealedSafetensors(await sealed(t), [key.identity]);
    t.after(() => st.close());
    assert.deepEqual(st.metadata, { format: "pt" });
    assert.deepEqual(Object.keys(st.tensors), ["embed.weight", "norm.weight", "h", "ids"]);
    assert.deepEqual(st.tensors["norm.weight"], { dtype: "F32", shape: [2, 2], byteLength: 16 });
    const norm = await st.getTensor("norm.weight");
    assert.ok(norm instanceof Float32Array);
    assert.deepEqual([...norm], [1.5, -2, 3.25, 0]);
    const h = await st.getTensor("h");
    assert.ok(h instanceof Uint16Array);
    assert.deepEqual([...h], [0x3c00, 0xc000, 0x7bff]);
    assert.deepEqual([...(await st.getTensor("ids"))], [-1n, 7n]);
    const embed = await st.getTensor("embed.weight");
    assert.ok(Buffer.from(embed.buffer, embed.byteOffset, embed.byteLength).equals(big));
  });

  test("getTensor decrypts only the chunks that cover the tensor", async (t) => {
    const st = await openSealedSafetensors(await sealed(t), [key.identity]);
    t.after(() => st.close());
    const before = { ...st.stats };
    await st.getTensor("norm.weight");
    const smallCost = st.stats.bytes - before.bytes;
    assert.ok(smallCost <= 16 + 2 * chunkSize, `decrypted ${smallCost} bytes for 16`);
    assert.ok(st.stats.chunks - before.chunks <= 2);
    const mid = { ...st.stats };
    await st.getTensor("embed.weight");
    const bigCost = st.stats.bytes - mid.bytes;
    assert.ok(bigCost >= big.length, "the whole tensor was decrypted");
    assert.ok(bigCost <= big.length + 2 * chunkSize, `decrypted ${bigCost} for ${big.length}`);
    // Opening and listing must not have decrypted the big tensor.
    assert.ok(before.bytes < big.length, `open decrypted ${before.bytes} bytes`);
  });

  test("unknown tensor name, closed file and wrong key are refused", async (t) => {
    const path = await sealed(t);
    const st = await openSealedSafetensors(path, [key.identity]);
    assert.equal((await errorOf(st.getTensor("nope"))).code, "E_USAGE");
    assert.equal((await errorOf(st.getTensor("__metadata__"))).code, "E_USAGE");
    await st.close();
    assert.equal((await errorOf(st.getTensor("h"))).code, "E_USAGE");
    const other = makeKey("other");
    assert.equal(
      (await errorOf(openSealedSafetensors(path, [other.identity]))).code,
      "E_NO_IDENTITY",
    );
  });

  test("a sealed file whose plaintext is not valid safetensors is E_MALFORMED", async (t) => {
    const truncated = file.subarray(0, file.length - 1);
    const e = await errorOf(openSealedSafetensors(await sealed(t, truncated), [key.identity]));
    assert.equal(e.code, "E_MALFORMED");
    assert.match(e.message, /short of the end|past the end/);
    const junk = await errorOf(
      openSealedSafetensors(await sealed(t, randomBytes(64)), [key.identity]),
    );
    assert.equal(junk.code, "E_MALFORMED");
  });

  test("expectContext is enforced", async (t) => {
    const path = await sealed(t);
    const e = await errorOf(
      openSealedSafetensors(path, [key.identity], { expectContext: { tenant: "acme" } }),
    );
    assert.match(e.message, /tenant/);
  });
});
