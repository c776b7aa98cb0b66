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
import { decodeDescriptor, encodeDescriptor } from "../../src/format/descriptor.js";
import { isTensorSealError } from "../../src/format/errors.js";
import { parseHeader } from "../../src/format/header.js";
import { metadataOf } from "../../src/format/metadata.js";

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
    assert.equal(valid.length, 20);
    assert.equal(invalid.length, 54);
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
      // A public (suite 2) vector opens with no identity at all; every other needs one.
      assert.equal(v.identities.length === 0, v.descriptor.suite === 2);
      if (v.descriptor.suite === 2) {
        const opened = await openFile(file, []);
        assert.equal(sha256(opened), v.plaintext.sha256, "public, no identity");
      }
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

  test("the metadata vector records tier, purpose and owner (spec §2.2.1)", async () => {
    const v = vectors.get("valid-metadata-16k-100") as ValidVector;
    const h = parseHeader(await fileOf(v));
    assert.deepEqual(metadataOf(h.descriptor.labels), {
      tier: "confidential",
      purpose: "fraud-detection weights, production",
      owner: "ml-platform@example.com",
    });
  });

  test("a writer cannot encode a bad tier, purpose or owner; a reader rejects one", () => {
    const base = { suite: 1, chunkSize: 16384, plaintextLength: 0, contentType: "x", context: {} };
    for (const labels of <Record<string, string>[]>[
      { "tensorseal:tier": "Public" },
      { "tensorseal:tier": "a".repeat(33) },
      { "tensorseal:owner": "" },
      { "tensorseal:purpose": "line\nbreak" },
      { "tensorseal:owner": "é".repeat(128) },
    ]) {
      assert.throws(
        () => encodeDescriptor({ ...base, labels }),
        (e) => isTensorSealError(e) && e.code === "E_MALFORMED",
        JSON.stringify(labels),
      );
    }
    const ok = encodeDescriptor({ ...base, labels: { "tensorseal:tier": "restricted" } });
    assert.equal(metadataOf(decodeDescriptor(ok).labels).tier, "restricted");
  });
});
