import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { closeWorkers, inspectFile } from "../../src/engine/index.js";
import {
  MANIFEST_NAME,
  openModelDir,
  parseManifest,
  readManifest,
  sealModelDir,
} from "../../src/integrations/model-dir/index.js";
import { errorOf, makeKey, tempDir } from "./helpers.js";

after(() => closeWorkers());

const key = makeKey();
const files: Record<string, Buffer> = {
  "config.json": Buffer.from('{"architectures":["LlamaForCausalLM"]}'),
  "tokenizer.json": Buffer.from('{"model":{"type":"BPE"}}'),
  "model-00001-of-00002.safetensors": randomBytes(70_000),
  "model-00002-of-00002.safetensors": randomBytes(40_000),
  "model.safetensors.index.json": Buffer.from('{"weight_map":{}}'),
  "nested/extra.bin": randomBytes(10),
};

function writeModel(dir: string): string {
  const model = join(dir, "model");
  for (const [p, data] of Object.entries(files)) {
    mkdirSync(join(model, p, ".."), { recursive: true });
    writeFileSync(join(model, p), data);
  }
  return model;
}

async function sealedModel(t: { after: (fn: () => void) => void }) {
  const dir = tempDir(t);
  const sealed = join(dir, "sealed");
  const result = await sealModelDir(writeModel(dir), sealed, {
    recipients: [key.recipient],
    chunkSize: 16384,
  });
  return { dir, sealed, result };
}

function noPartialOutput(dir: string, out: string): void {
  assert.equal(existsSync(out), false, "output directory must not exist after a failure");
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes("tseal-tmp")),
    [],
  );
}

describe("model directories", () => {
  test("seal-dir then open-dir round-trips every file, with path and model contexts", async (t) => {
    const { dir, sealed, result } = await sealedModel(t);
    assert.deepEqual(
      result.files.map((f) => f.path),
      Object.keys(files).sort(),
    );
    const h = await inspectFile(join(sealed, "model-00001-of-00002.safetensors.tseal"));
    assert.deepEqual(
      { ...h.descriptor.context },
      {
        "tensorseal.model": result.model,
        "tensorseal.path": "model-00001-of-00002.safetensors",
      },
    );
    const out = join(dir, "opened");
    await openModelDir(sealed, out, { identities: [key.identity] });
    for (const [p, data] of Object.entries(files)) {
      assert.ok(readFileSync(join(out, p)).equals(data), p);
    }
    const manifest = await readManifest(sealed, [key.identity]);
    assert.equal(manifest.model, result.model);
    assert.equal(manifest.files.find((f) => f.path === "config.json")?.size, 38);
  });

  test("the manifest is sealed: its plaintext names are not in the sealed directory", async (t) => {
    const { sealed } = await sealedModel(t);
    const bytes = readFileSync(join(sealed, `${MANIFEST_NAME}.tseal`));
    assert.equal(bytes.includes(Buffer.from("tokenizer.json")), false);
    assert.equal(bytes.includes(Buffer.from("sha256")), false);
  });

  test("swapped files are refused, naming the file, and nothing is written", async (t) => {
    const { dir, sealed } = await sealedModel(t);
    const a = join(sealed, "model-00001-of-00002.safetensors.tseal");
    const b = join(sealed, "model-00002-of-00002.safetensors.tseal");
    renameSync(a, join(sealed, "x"));
    renameSync(b, a);
    renameSync(join(sealed, "x"), b);
    const out = join(dir, "opened");
    const e = await errorOf(openModelDir(sealed, out, { identities: [key.identity] }));
    assert.equal(e.code, "E_DECRYPT");
    assert.match(e.message, /model-0000\d-of-00002\.safetensors\.tseal.*(swapped|renamed)/);
    noPartialOutput(dir, out);
  });

  test("a file from another sealing of the same model is refused (model id differs)", async (t) => {
    const one = await sealedModel(t);
    const two = await sealedModel(t);
    const name = "config.json.tseal";
    writeFileSync(join(one.sealed, name), readFileSync(join(two.sealed, name)));
    const out = join(one.dir, "opened");
    const e = await errorOf(openModelDir(one.sealed, out, { identities: [key.identity] }));
    assert.equal(e.code, "E_DECRYPT");
    assert.match(e.message, /config\.json\.tseal/);
    noPartialOutput(one.dir, out);
  });

  test("missing, extra and renamed files are refused by name", async (t) => {
    const { dir, sealed } = await sealedModel(t);
    const out = join(dir, "opened");
    const tok = join(sealed, "tokenizer.json.tseal");
    const saved = readFileSync(tok);
    unlinkSync(tok);
    let e = await errorOf(openModelDir(sealed, out, { identities: [key.identity] }));
    assert.match(e.message, /tokenizer\.json\.tseal is missing/);
    writeFileSync(join(sealed, "tokenizer2.json.tseal"), saved);
    e = await errorOf(openModelDir(sealed, out, { identities: [key.identity] }));
    assert.match(e.message, /tokenizer2\.json\.tseal is not in the sealed manifest/);
    renameSync(join(sealed, "tokenizer2.json.tseal"), tok);
    writeFileSync(join(sealed, "evil.py"), "import os");
    e = await errorOf(openModelDir(sealed, out, { identities: [key.identity] }));
    assert.match(e.message, /evil\.py is not in the sealed manifest/);
    assert.equal(e.code, "E_DECRYPT");
    noPartialOutput(dir, out);
    unlinkSync(join(sealed, "evil.py"));
    await openModelDir(sealed, out, { identities: [key.identity] });
  });

  test("a tampered shard fails authentication mid-way and leaves no partial directory", async (t) => {
    const { dir, sealed } = await sealedModel(t);
    const shard = join(sealed, "model-00002-of-00002.safetensors.tseal");
    const bytes = readFileSync(shard);
    bytes[bytes.length - 20]! ^= 1;
    writeFileSync(shard, bytes);
    const out = join(dir, "opened");
    assert.equal(
      (await errorOf(openModelDir(sealed, out, { identities: [key.identity] }))).code,
      "E_DECRYPT",
    );
    noPartialOutput(dir, out);
  });

  test("refuses an existing output, a wrong key, and a reserved manifest name", async (t) => {
    const { dir, sealed } = await sealedModel(t);
    mkdirSync(join(dir, "exists"));
    assert.equal(
      (await errorOf(openModelDir(sealed, join(dir, "exists"), { identities: [key.identity] })))
        .code,
      "E_USAGE",
    );
    const other = makeKey("other");
    assert.equal(
      (await errorOf(openModelDir(sealed, join(dir, "o2"), { identities: [other.identity] }))).code,
      "E_NO_IDENTITY",
    );
    const model = join(dir, "model");
    writeFileSync(join(model, MANIFEST_NAME), "{}");
    const e = await errorOf(sealModelDir(model, join(dir, "s2"), { recipients: [key.recipient] }));
    assert.match(e.message, /reserved/);
    assert.equal(existsSync(join(dir, "s2")), false);
  });

  test("symlinks to files are followed (HF cache); links to directories are refused", async (t) => {
    const dir = tempDir(t);
    const model = writeModel(dir);
    writeFileSync(join(dir, "blob"), "linked");
    symlinkSync(join(dir, "blob"), join(model, "linked.txt"));
    const r = await sealModelDir(model, join(dir, "s"), { recipients: [key.recipient] });
    assert.ok(r.files.some((f) => f.path === "linked.txt"));
    rmSync(join(model, "linked.txt"));
    symlinkSync(dir, join(model, "loop"));
    const e = await errorOf(sealModelDir(model, join(dir, "s2"), { recipients: [key.recipient] }));
    assert.match(e.message, /loop is not a regular file/);
  });

  test("parseManifest rejects unsafe paths, duplicates and bad digests", async () => {
    const ok = { path: "a", size: 1, sha256: "0".repeat(64) };
    const doc = (files: unknown[]) =>
      Buffer.from(JSON.stringify({ version: 1, model: "a".repeat(32), files }));
    assert.equal(parseManifest(doc([ok])).files.length, 1);
    for (const [bad, message] of [
      [[{ ...ok, path: "../etc/passwd" }], /unsafe/],
      [[{ ...ok, path: "/abs" }], /unsafe/],
      [[{ ...ok, path: "a//b" }], /unsafe/],
      [[ok, ok], /duplicated/],
      [[{ ...ok, sha256: "xyz" }], /sha256/],
      [[{ ...ok, size: -1 }], /size/],
      [[{ ...ok, path: MANIFEST_NAME }], /itself/],
    ] as const) {
      const e = await errorOf(() => parseManifest(doc(bad as unknown as unknown[])));
      assert.equal(e.code, "E_MALFORMED");
      assert.match(e.message, message);
    }
  });
});
