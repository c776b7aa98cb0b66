/**
 * The CLI side of signed provenance: seal-dir --sign, then --require-signer on open-dir, exec
 * and verify: the producer's key passes; unsigned, another signer and a swapped shard exit 5
 * (E_SIGNATURE) before anything is decrypted or run.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Sandbox, sandbox } from "./helpers.js";

function keyPair(dir: string, name: string) {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const priv = join(dir, `${name}.pem`);
  const pub = join(dir, `${name}.pub`);
  writeFileSync(priv, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  writeFileSync(pub, publicKey.export({ type: "spki", format: "pem" }));
  return { priv, pub };
}

describe("CLI: signed sealed model directories", () => {
  let s: Sandbox;
  let producer: { priv: string; pub: string };
  let stranger: { priv: string; pub: string };
  const shard = randomBytes(40_000);

  function model(name: string): string {
    const dir = join(s.dir, name);
    mkdirSync(dir);
    writeFileSync(join(dir, "config.json"), '{"model_type":"gpt2"}');
    writeFileSync(join(dir, "model.safetensors"), shard);
    return dir;
  }

  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    producer = keyPair(s.dir, "producer");
    stranger = keyPair(s.dir, "stranger");
  });
  after(() => s.cleanup());

  test("seal-dir --sign; open-dir, verify and exec --require-signer accept the producer", () => {
    const out = join(s.dir, "a.sealed");
    let r = s.run(["seal-dir", model("a"), "-o", out, "--sign", producer.priv, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(out, "model.sig")));
    r = s.run(["verify", "--require-signer", producer.pub, out, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const [v] = JSON.parse(r.stdout.toString());
    assert.equal(v.ok, true);
    assert.equal(v.files, 2);
    r = s.run(["open-dir", out, "-o", join(s.dir, "a.open"), "--require-signer", producer.pub]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(join(s.dir, "a.open", "model.safetensors")).equals(shard));
    const ran = join(s.dir, "ran-a");
    r = s.run(["exec", "-m", out, "--require-signer", producer.pub, "--", "touch", ran]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(ran));
  });

  test("another signer, an unsigned model and a swapped shard exit 5 and decrypt nothing", () => {
    const out = join(s.dir, "b.sealed");
    const other = join(s.dir, "c.sealed");
    assert.equal(s.run(["seal-dir", model("b"), "-o", out, "--sign", producer.priv]).status, 0);
    assert.equal(s.run(["seal-dir", model("c"), "-o", other, "--sign", producer.priv]).status, 0);

    let r = s.run(["open-dir", out, "-o", join(s.dir, "b.open"), "--require-signer", stranger.pub]);
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stderr.toString(), /E_SIGNATURE|another key/);
    assert.equal(existsSync(join(s.dir, "b.open")), false);

    const ran = join(s.dir, "ran-b");
    r = s.run(["exec", "-m", out, "--require-signer", stranger.pub, "--", "touch", ran]);
    assert.equal(r.status, 5, r.stderr);
    assert.equal(existsSync(ran), false, "the command must not run");

    // A shard from another signed sealing of the same plaintext, by the same producer.
    const name = "model.safetensors.tseal";
    writeFileSync(join(out, name), readFileSync(join(other, name)));
    r = s.run(["verify", "--require-signer", producer.pub, out]);
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stderr.toString(), /model\.safetensors\.tseal is not the signed file/);

    unlinkSync(join(other, "model.sig"));
    r = s.run(["open-dir", other, "-o", join(s.dir, "c.open"), "--require-signer", producer.pub]);
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stderr.toString(), /unsigned/);
    // Without a required signer the unsigned model still opens.
    assert.equal(s.run(["open-dir", other, "-o", join(s.dir, "c.open")]).status, 0);
  });

  test("bad key files are refused with a usable message", () => {
    let r = s.run(["seal-dir", model("d"), "-o", join(s.dir, "d.sealed"), "--sign", producer.pub]);
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr.toString(), /not an unencrypted PEM private key/);
    assert.equal(existsSync(join(s.dir, "d.sealed")), false);
    r = s.run(["verify", "--require-signer", producer.priv, join(s.dir, "a.sealed")]);
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr.toString(), /PUBLIC key/);
    assert.doesNotMatch(r.stderr.toString(), /BEGIN/);
  });

  test("seal --sign; open, verify and exec --require-signer on a single sealed file", () => {
    const plain = join(s.dir, "w.bin");
    writeFileSync(plain, shard);
    const sealedFile = join(s.dir, "w.bin.tseal");
    let r = s.run(["seal", plain, "--sign", producer.priv]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(`${sealedFile}.sig`));
    r = s.run(["verify", "--require-signer", producer.pub, sealedFile]);
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["open", sealedFile, "-o", join(s.dir, "w.out"), "--require-signer", producer.pub]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(join(s.dir, "w.out")).equals(shard));
    const ran = join(s.dir, "ran-w");
    r = s.run(["exec", "-m", sealedFile, "--require-signer", producer.pub, "--", "touch", ran]);
    assert.equal(r.status, 0, r.stderr);

    r = s.run(["open", sealedFile, "-o", join(s.dir, "w.out2"), "--require-signer", stranger.pub]);
    assert.equal(r.status, 5, r.stderr);
    assert.equal(existsSync(join(s.dir, "w.out2")), false);

    // The same plaintext sealed again (same recipients) is another sealed file: refused.
    const again = join(s.dir, "again.tseal");
    assert.equal(s.run(["seal", plain, "-o", again]).status, 0);
    writeFileSync(sealedFile, readFileSync(again));
    r = s.run(["open", sealedFile, "-o", join(s.dir, "w.out3"), "--require-signer", producer.pub]);
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stderr.toString(), /not the signed file/);
    assert.equal(existsSync(join(s.dir, "w.out3")), false);
    r = s.run([
      "exec",
      "-m",
      sealedFile,
      "--require-signer",
      producer.pub,
      "--",
      "touch",
      `${ran}2`,
    ]);
    assert.equal(r.status, 5, r.stderr);
    assert.equal(existsSync(`${ran}2`), false);

    r = s.run(["open", again, "-o", join(s.dir, "w.out4"), "--require-signer", producer.pub]);
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stderr.toString(), /unsigned/);
    r = s.run(["seal", "-", "-o", join(s.dir, "x.tseal"), "--sign", producer.priv], {
      input: shard,
    });
    assert.equal(r.status, 2, r.stderr);
  });
});
