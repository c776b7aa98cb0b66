/**
 * spec/vectors/: the committed JSON must equal a fresh in-memory generation byte for byte; every
 * valid vector must re-seal to its recorded file from its recorded inputs and open with each of
 * its identities; every invalid vector must fail with its recorded error code.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import {
  applyMutations,
  buildVectors,
  openFile,
  plaintextFor,
  sealVector,
  serialize,
  sha256,
  type ValidVector,
  type Vector,
} from "../../scripts/vectors/build.js";
import { isTensorSealError } from "../../src/format/errors.js";

/** dist/test/format/*.js -> repository root -> spec/vectors. */
const DIR = new URL("../../../spec/vectors/", import.meta.url);

const committed = new Map<string, string>(
  readdirSync(DIR)
    .filter((f) => f.endsWith(".json"))
    .map((f) => [f.slice(0, -5), readFileSync(new URL(f, DIR), "utf8")]),
);
const vectors = new Map<string, Vector>(
  [...committed].map(([name, text]) => [name, JSON.parse(text) as Vector]),
);
const files = new Map<string, Buffer>();

async function fileOf(v: ValidVector): Promise<Buffer> {
  let file = files.get(v.name);
  if (!file) {
    file = await sealVector(v);
    files.set(v.name, file);
  }
  return file;
}

describe("spec/vectors", () => {
  test("the committed files equal a fresh generation byte for byte", async () => {
    const fresh = await buildVectors();
    assert.deepEqual([...committed.keys()].sort(), [...fresh.keys()].sort());
    for (const [name, v] of fresh) assert.equal(committed.get(name), serialize(v), name);
  });

  const valid = [...vectors.values()].filter((v): v is ValidVector => v.valid);
  const invalid = [...vectors.values()].filter((v) => !v.valid);
  test("vector counts", () => {
    assert.equal(valid.length, 15);
    assert.equal(invalid.length, 41);
  });

  for (const v of valid) {
    test(`valid ${v.name}: re-seals from its inputs and opens with each identity`, async () => {
      const file = await fileOf(v);
      assert.equal(file.length, v.fileLength);
      assert.equal(sha256(file), v.fileSha256);
      if (v.file) assert.equal(file.toString("hex"), v.file);
      if (v.header)
        assert.equal(file.subarray(0, v.intermediate.headerLength).toString("hex"), v.header);
      assert.ok(v.file || v.header, "a vector stores the file or at least its header");
      const expected = plaintextFor(v.plaintext);
      assert.equal(sha256(expected), v.plaintext.sha256);
      if (v.plaintext.hex !== undefined) assert.equal(expected.toString("hex"), v.plaintext.hex);
      assert.ok(v.identities.length > 0);
      for (const id of v.identities) {
        const opened = await openFile(file, [id]);
        assert.equal(opened.length, v.plaintext.length, id.type);
        assert.equal(sha256(opened), v.plaintext.sha256, id.type);
      }
    });
  }

  for (const v of invalid) {
    if (v.valid) continue;
    test(`invalid ${v.name}: fails with ${v.expectedError}`, async () => {
      const base = vectors.get(`valid-${v.base}`);
      assert.ok(base?.valid, `base vector ${v.base}`);
      const file = applyMutations(await fileOf(base), v.mutations);
      assert.equal(file.length, v.fileLength);
      assert.equal(sha256(file), v.fileSha256);
      await assert.rejects(openFile(file, v.identities), (e) => {
        assert.ok(isTensorSealError(e), String(e));
        assert.equal(e.code, v.expectedError, e.message);
        return true;
      });
    });
  }
});
