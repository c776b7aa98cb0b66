import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { Tensor } from "onnxruntime-node";
import { closeWorkers, sealFile } from "../../src/engine/index.js";
import { loadSealedOnnx } from "../../src/integrations/onnx.js";
import { errorOf, makeKey, tempDir } from "./helpers.js";
import { addModel } from "./onnx-model.js";

after(() => closeWorkers());

const key = makeKey();

async function sealedModel(t: { after: (fn: () => void) => void }): Promise<string> {
  const dir = tempDir(t);
  writeFileSync(join(dir, "add.onnx"), addModel());
  await sealFile(join(dir, "add.onnx"), join(dir, "add.onnx.tseal"), {
    recipients: [key.recipient],
    context: { model: "add" },
  });
  return join(dir, "add.onnx.tseal");
}

test("loadSealedOnnx runs a sealed Add model", async (t) => {
  const session = await loadSealedOnnx(await sealedModel(t), [key.identity]);
  t.after(() => session.release());
  assert.deepEqual([...session.inputNames], ["a", "b"]);
  const out = await session.run({
    a: new Tensor("float32", Float32Array.from([1.5, -2]), [2]),
    b: new Tensor("float32", Float32Array.from([0.25, 10]), [2]),
  });
  assert.deepEqual([...(out.c!.data as Float32Array)], [1.75, 8]);
});

test("loadSealedOnnx refuses a wrong key, a wrong context and a tampered model", async (t) => {
  const path = await sealedModel(t);
  assert.equal(
    (await errorOf(loadSealedOnnx(path, [makeKey("x").identity]))).code,
    "E_NO_IDENTITY",
  );
  const ctx = await errorOf(
    loadSealedOnnx(path, [key.identity], {}, { expectContext: { model: "other" } }),
  );
  assert.match(ctx.message, /model/);
  const bytes = readFileSync(path);
  bytes[bytes.length - 20]! ^= 1;
  writeFileSync(path, bytes);
  assert.equal((await errorOf(loadSealedOnnx(path, [key.identity]))).code, "E_DECRYPT");
});
