/**
 * Cross-check with the OpenSSF model-signing tool (`model_signing`, PyPI model-signing 1.1.1 in
 * .venv-model-signing, installed by scripts/setup-test-deps.sh): a directory sealed and signed
 * by TensorSeal, once opened, verifies with `model_signing verify key`, and stops verifying when
 * a file changes; a signature made by `model_signing sign key` verifies with our DSSE code.
 * Without the tool these tests skip, except under TENSORSEAL_REQUIRE_ALL=1 (CI), where they fail.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { promisify } from "node:util";
import { closeWorkers, openFile, sealFile } from "../../src/engine/index.js";
import { openModelDir, sealModelDir } from "../../src/integrations/model-dir/index.js";
import { verifyBundle } from "../../src/integrations/provenance/dsse.js";
import {
  checkOpenedFile,
  digestPlain,
  fileSignaturePath,
  loadSignerKey,
  loadSigningKey,
  signaturePath,
  signSealedFile,
  verifySealedFile,
} from "../../src/integrations/provenance/index.js";
import { parseStatement } from "../../src/integrations/provenance/statement.js";
import { errorOf, makeKey, tempDir } from "./helpers.js";

after(() => closeWorkers());

const TOOL = resolve(".venv-model-signing/bin/model_signing");
const missing = existsSync(TOOL)
  ? undefined
  : `${TOOL} is missing (run scripts/setup-test-deps.sh)`;
const requireAll = process.env.TENSORSEAL_REQUIRE_ALL === "1";
const skip = missing && !requireAll ? missing : false;

const run = promisify(execFile);

/** Exit code and output of the tool (it exits 1 on a failed verification). */
async function tool(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(TOOL, args, { timeout: 120_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== "number") throw e;
    return { code: err.code, out: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
}

const key = makeKey();

function keyFiles(dir: string, name: string) {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const priv = join(dir, `${name}.pem`);
  const pub = join(dir, `${name}.pub`);
  // SEC1 "EC PRIVATE KEY", as `openssl ecparam -genkey` writes it.
  writeFileSync(priv, privateKey.export({ type: "sec1", format: "pem" }), { mode: 0o600 });
  writeFileSync(pub, publicKey.export({ type: "spki", format: "pem" }));
  return { priv, pub };
}

function writeModel(root: string): void {
  const files: Record<string, Buffer> = {
    "config.json": Buffer.from('{"model_type":"gpt2"}'),
    "model.safetensors": randomBytes(40_000),
    "tokenizer/vocab.json": Buffer.from('{"a":0}'),
    ".gitattributes": Buffer.from("*.safetensors filter=lfs\n"),
  };
  for (const [p, data] of Object.entries(files)) {
    mkdirSync(join(root, p, ".."), { recursive: true });
    writeFileSync(join(root, p), data);
  }
}

describe("model-signing cross-check", { skip }, () => {
  test("the tool is installed (TENSORSEAL_REQUIRE_ALL=1 fails without it)", () => {
    assert.equal(missing, undefined, missing);
  });

  test("TensorSeal-signed, opened model verifies with model_signing; tampering fails it", async (t) => {
    const dir = tempDir(t);
    const producer = keyFiles(dir, "producer");
    const stranger = keyFiles(dir, "stranger");
    writeModel(join(dir, "gpt2"));
    const sealed = join(dir, "gpt2.sealed");
    await sealModelDir(join(dir, "gpt2"), sealed, {
      recipients: [key.recipient],
      chunkSize: 16384,
      signWith: loadSigningKey(producer.priv),
    });
    const opened = join(dir, "opened");
    await openModelDir(sealed, opened, {
      identities: [key.identity],
      requireSigner: loadSignerKey(producer.pub),
    });
    const verify = (pub: string) =>
      tool(["verify", "key", "--signature", signaturePath(sealed), "--public_key", pub, opened]);

    let r = await verify(producer.pub);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Verification succeeded/);

    r = await verify(stranger.pub);
    assert.notEqual(r.code, 0, "another public key must not verify");
    assert.match(r.out, /Verification failed/);

    const shard = join(opened, "model.safetensors");
    const saved = readFileSync(shard);
    const changed = Buffer.from(saved);
    changed[100] = (changed[100] as number) ^ 1;
    writeFileSync(shard, changed);
    r = await verify(producer.pub);
    assert.notEqual(r.code, 0, "a modified shard must not verify");
    assert.match(r.out, /Hash mismatch for \W*model\.safetensors/);
    writeFileSync(shard, saved);

    appendFileSync(join(opened, "extra.py"), "import os\n");
    r = await verify(producer.pub);
    assert.notEqual(r.code, 0, "an added file must not verify");
    assert.match(r.out, /Extra files/);
  });

  test("a model_signing signature verifies with TensorSeal's DSSE code (and binds no sealed files)", async (t) => {
    const dir = tempDir(t);
    const producer = keyFiles(dir, "producer");
    const stranger = keyFiles(dir, "stranger");
    writeModel(join(dir, "gpt2"));
    const sig = join(dir, "gpt2.sig");
    const r = await tool([
      "sign",
      "key",
      "--private_key",
      producer.priv,
      "--signature",
      sig,
      join(dir, "gpt2"),
    ]);
    assert.equal(r.code, 0, r.out);
    const doc = JSON.parse(readFileSync(sig, "utf8"));
    const payload = verifyBundle(doc, loadSignerKey(producer.pub));
    const st = JSON.parse(payload.toString());
    assert.deepEqual(
      st.predicate.resources.map((x: { name: string }) => x.name),
      ["config.json", "model.safetensors", "tokenizer/vocab.json"],
    );
    assert.throws(() => verifyBundle(doc, loadSignerKey(stranger.pub)), /another key/);
    const e = await errorOf(() => parseStatement(payload));
    assert.equal(e.code, "E_SIGNATURE");
    assert.match(e.message, /does not bind sealed files/);
  });

  test("a single file sealed with --sign verifies with model_signing once opened", async (t) => {
    const dir = tempDir(t);
    const producer = keyFiles(dir, "producer");
    const plain = join(dir, "weights.safetensors");
    writeFileSync(plain, randomBytes(30_000));
    const sealedFile = `${plain}.tseal`;
    await sealFile(plain, sealedFile, { recipients: [key.recipient], chunkSize: 16384 });
    await signSealedFile(
      sealedFile,
      "weights.safetensors",
      await digestPlain(plain),
      loadSigningKey(producer.priv),
    );
    const binding = await verifySealedFile(sealedFile, loadSignerKey(producer.pub));
    const opened = join(dir, "opened.safetensors");
    await openFile(sealedFile, opened, { identities: [key.identity] });
    await checkOpenedFile(opened, binding);
    const args = [
      "verify",
      "key",
      "--signature",
      fileSignaturePath(sealedFile),
      "--public_key",
      producer.pub,
    ];
    let r = await tool([...args, opened]);
    assert.equal(r.code, 0, r.out);
    appendFileSync(opened, "x");
    r = await tool([...args, opened]);
    assert.notEqual(r.code, 0, "a modified file must not verify");
  });
});
