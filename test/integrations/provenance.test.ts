/**
 * Signed provenance of sealed model directories (src/integrations/provenance): seal-dir signs,
 * open-dir with a required signer refuses unsigned, foreign-signed, modified, swapped and
 * re-signed models before decrypting, and a rewrap keeps the signature valid.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { closeWorkers } from "../../src/engine/index.js";
import { rewrapFile } from "../../src/engine/rewrap.js";
import { openModelDir, sealModelDir } from "../../src/integrations/model-dir/index.js";
import { listFiles } from "../../src/integrations/model-dir/walk.js";
import {
  keyHint,
  loadSignerKey,
  signaturePath,
  verifySealedDir,
} from "../../src/integrations/provenance/index.js";
import { comparePaths, encodeStatement } from "../../src/integrations/provenance/statement.js";
import { errorOf, makeKey, tempDir } from "./helpers.js";

after(() => closeWorkers());

const key = makeKey();
const producer = ecKey();
const other = ecKey();

function ecKey(): { priv: KeyObject; pub: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return { priv: privateKey, pub: publicKey };
}

const files: Record<string, Buffer> = {
  "config.json": Buffer.from('{"architectures":["GPT2LMHeadModel"]}'),
  "model-00001-of-00002.safetensors": randomBytes(50_000),
  "model-00002-of-00002.safetensors": randomBytes(30_000),
  ".gitattributes": Buffer.from("*.safetensors filter=lfs\n"),
  "nested/extra.bin": randomBytes(10),
};

async function sealed(t: { after: (fn: () => void) => void }, signWith = producer.priv) {
  const dir = tempDir(t);
  const model = join(dir, "model");
  for (const [p, data] of Object.entries(files)) {
    mkdirSync(join(model, p, ".."), { recursive: true });
    writeFileSync(join(model, p), data);
  }
  const out = join(dir, "sealed");
  const result = await sealModelDir(model, out, {
    recipients: [key.recipient],
    chunkSize: 16384,
    signWith,
  });
  return { dir, sealed: out, result };
}

function openSigned(sealedDir: string, out: string, signer: KeyObject) {
  return openModelDir(sealedDir, out, { identities: [key.identity], requireSigner: signer });
}

describe("signed provenance of sealed model directories", () => {
  test("seal-dir --sign writes model.sig; open-dir with the signer opens every file", async (t) => {
    const { dir, sealed: s } = await sealed(t);
    assert.ok(existsSync(signaturePath(s)));
    const binding = await verifySealedDir(s, producer.pub);
    assert.deepEqual(
      binding.files.map((f) => f.path),
      Object.keys(files).sort(),
    );
    const out = join(dir, "opened");
    await openSigned(s, out, producer.pub);
    for (const [p, data] of Object.entries(files)) {
      assert.ok(readFileSync(join(out, p)).equals(data), p);
    }
    assert.equal(
      existsSync(join(out, "model.sig")),
      false,
      "the signature stays with the sealed dir",
    );
  });

  test("the bundle is model-signing's: DSSE in-toto statement, key hint, resources", async (t) => {
    const { sealed: s } = await sealed(t);
    const bundle = JSON.parse(readFileSync(signaturePath(s), "utf8"));
    assert.equal(bundle.mediaType, "application/vnd.dev.sigstore.bundle.v0.3+json");
    assert.equal(bundle.verificationMaterial.publicKey.hint, keyHint(producer.pub));
    assert.deepEqual(bundle.verificationMaterial.tlogEntries, []);
    assert.equal(bundle.dsseEnvelope.payloadType, "application/vnd.in-toto+json");
    const st = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, "base64").toString());
    assert.equal(st._type, "https://in-toto.io/Statement/v1");
    assert.equal(st.predicateType, "https://model_signing/signature/v1.0");
    assert.equal(st.subject[0].name, "model");
    // .gitattributes is bound by TensorSeal but, as model-signing ignores it, not a resource.
    assert.deepEqual(
      st.predicate.resources.map((r: { name: string }) => r.name),
      [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "nested/extra.bin",
      ],
    );
    assert.ok(
      st.predicate.tensorseal.files.some((f: { path: string }) => f.path === ".gitattributes"),
    );
  });

  test("an unsigned model is refused when a signer is required, and opens without one", async (t) => {
    const { dir, sealed: s } = await sealed(t);
    unlinkSync(signaturePath(s));
    const out = join(dir, "opened");
    const e = await errorOf(openSigned(s, out, producer.pub));
    assert.equal(e.code, "E_SIGNATURE");
    assert.match(e.message, /unsigned/);
    assert.equal(existsSync(out), false);
    await openModelDir(s, out, { identities: [key.identity] });
  });

  test("another signer's key is refused", async (t) => {
    const { dir, sealed: s } = await sealed(t);
    const e = await errorOf(openSigned(s, join(dir, "opened"), other.pub));
    assert.equal(e.code, "E_SIGNATURE");
    assert.match(e.message, /another key/);
    assert.equal(existsSync(join(dir, "opened")), false);
  });

  test("a modified statement (a digest changed, signature kept) is refused", async (t) => {
    const { dir, sealed: s } = await sealed(t);
    const bundle = JSON.parse(readFileSync(signaturePath(s), "utf8"));
    const st = Buffer.from(bundle.dsseEnvelope.payload, "base64").toString();
    const changed = st.replace(
      /"digest": "([0-9a-f])/,
      (_m, c) => `"digest": "${c === "0" ? "1" : "0"}`,
    );
    assert.notEqual(changed, st);
    bundle.dsseEnvelope.payload = Buffer.from(changed).toString("base64");
    writeFileSync(signaturePath(s), JSON.stringify(bundle));
    const e = await errorOf(openSigned(s, join(dir, "opened"), producer.pub));
    assert.equal(e.code, "E_SIGNATURE");
    assert.match(e.message, /does not verify/);
  });

  test("a shard or manifest from another sealing of the same model is refused before decrypting", async (t) => {
    const one = await sealed(t);
    const two = await sealed(t);
    for (const name of [
      "model-00002-of-00002.safetensors.tseal",
      "tensorseal-manifest.json.tseal",
    ]) {
      const saved = readFileSync(join(one.sealed, name));
      writeFileSync(join(one.sealed, name), readFileSync(join(two.sealed, name)));
      const e = await errorOf(verifySealedDir(one.sealed, producer.pub));
      assert.equal(e.code, "E_SIGNATURE", name);
      assert.match(e.message, new RegExp(`${name.replaceAll(".", "\\.")} is not the signed file`));
      const out = join(one.dir, "opened");
      assert.equal((await errorOf(openSigned(one.sealed, out, producer.pub))).code, "E_SIGNATURE");
      assert.equal(existsSync(out), false);
      writeFileSync(join(one.sealed, name), saved);
    }
    await verifySealedDir(one.sealed, producer.pub);
  });

  test("an added or removed file is refused", async (t) => {
    const { sealed: s } = await sealed(t);
    writeFileSync(join(s, "evil.py"), "import os");
    let e = await errorOf(verifySealedDir(s, producer.pub));
    assert.match(e.message, /evil\.py is not in the signed model/);
    unlinkSync(join(s, "evil.py"));
    unlinkSync(join(s, "config.json.tseal"));
    e = await errorOf(verifySealedDir(s, producer.pub));
    assert.match(e.message, /config\.json\.tseal is signed but missing/);
  });

  test("a tampered model re-signed by another key is refused for the producer's key", async (t) => {
    const one = await sealed(t);
    const two = await sealed(t, other.priv);
    // The attacker swaps in a whole model of theirs, signature included.
    for (const f of await listFiles(two.sealed)) {
      writeFileSync(join(one.sealed, f), readFileSync(join(two.sealed, f)));
    }
    await verifySealedDir(one.sealed, other.pub);
    const e = await errorOf(openSigned(one.sealed, join(one.dir, "opened"), producer.pub));
    assert.equal(e.code, "E_SIGNATURE");
    assert.match(e.message, /another key/);
  });

  test("a signature with its key hint removed still needs the right key", async (t) => {
    const { sealed: s } = await sealed(t, other.priv);
    const bundle = JSON.parse(readFileSync(signaturePath(s), "utf8"));
    bundle.verificationMaterial.publicKey.hint = "";
    writeFileSync(signaturePath(s), JSON.stringify(bundle));
    const e = await errorOf(verifySealedDir(s, producer.pub));
    assert.match(e.message, /does not verify/);
    await verifySealedDir(s, other.pub);
  });

  test("rewrap (new recipients) keeps the signature valid: stanzas are not signed", async (t) => {
    const { dir, sealed: s } = await sealed(t);
    const next = makeKey("next");
    for (const f of (await listFiles(s)).filter((n) => n.endsWith(".tseal"))) {
      const r = await rewrapFile(join(s, f), {
        identities: [key.identity],
        edit: async (stanzas, fk) => [...stanzas, await next.recipient.wrap(fk)],
      });
      assert.equal(r.changed, true);
    }
    await verifySealedDir(s, producer.pub);
    await openModelDir(s, join(dir, "opened"), {
      identities: [next.identity],
      requireSigner: producer.pub,
    });
  });

  test("a private key given as --require-signer is refused (only the public key is needed)", () => {
    const pem = producer.priv.export({ type: "pkcs8", format: "pem" });
    assert.throws(() => loadSignerKey(Buffer.from(pem)), /PUBLIC key/);
    const pub = producer.pub.export({ type: "spki", format: "pem" });
    assert.equal(keyHint(loadSignerKey(Buffer.from(pub))), keyHint(producer.pub));
  });

  test("resources are ordered as Python orders paths, segment by segment", () => {
    const names = ["a.txt", "a/b", "b", "a-b", "A"];
    assert.deepEqual([...names].sort(comparePaths), ["A", "a/b", "a-b", "a.txt", "b"]);
    const st = JSON.parse(
      encodeStatement("m", {
        version: 1,
        model: "0".repeat(32),
        manifest: "0".repeat(64),
        files: names
          .sort()
          .map((path) => ({ path, size: 1, sha256: "1".repeat(64), sealed: "2".repeat(64) })),
      }).toString(),
    );
    assert.deepEqual(
      st.predicate.resources.map((r: { name: string }) => r.name),
      ["A", "a/b", "a-b", "a.txt", "b"],
    );
  });

  test("P-384 keys sign with SHA-384; other key types are refused", async (t) => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
    const { sealed: s } = await sealed(t, privateKey);
    await verifySealedDir(s, publicKey);
    const e = await errorOf(verifySealedDir(s, producer.pub));
    assert.equal(e.code, "E_SIGNATURE");
    const ed = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" });
    assert.throws(() => loadSignerKey(Buffer.from(ed)), /not an ECDSA P-256, P-384 or P-521 key/);
  });
});
