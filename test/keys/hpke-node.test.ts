/**
 * HPKE's primitives from OpenSSL (src/keys/hpke-node.ts, through src/format/primitives.ts)
 * under the `hpke` library's CipherSuite: RFC 9180's own vectors (A.1.1), interoperation both ways with the library's
 * WebCrypto suite, and the attacks a KEM must refuse (low-order points from Wycheproof, keys
 * it did not make, modified ciphertexts). The KDF's steps are src/format/hkdf.ts, checked
 * against Wycheproof in test/format/wycheproof-primitives.test.ts.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import * as HPKE from "hpke";
import { isTensorSealError } from "../../src/format/errors.js";
import {
  AEAD_AES_128_GCM,
  AEAD_AES_256_GCM,
  KDF_HKDF_SHA256,
  kemX25519,
} from "../../src/keys/hpke-node.js";
import { unwrapX25519, wrapX25519, x25519Tag } from "../../src/keys/x25519.js";
import { generateX25519KeyPair } from "../../src/keys/x25519-key.js";
import { hex, loadWycheproof, type WycheproofTest } from "../format/wycheproof.js";

// RFC 9180 A.1.1: base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
const A11 = {
  ikmE: hex("7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234"),
  skEm: hex("52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736"),
  pkEm: hex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431"),
  ikmR: hex("6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037"),
  skRm: hex("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8"),
  pkRm: hex("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"),
  info: hex("4f6465206f6e2061204772656369616e2055726e"),
  pt: hex("4265617574792069732074727574682c20747275746820626561757479"),
  // sequence number -> [aad, ct]
  seal: [
    [
      "436f756e742d30",
      "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
    ],
    [
      "436f756e742d31",
      "af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84",
    ],
  ],
  // exporter context -> 32-byte secret
  exports: [
    ["", "3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee"],
    ["00", "2e8f0b54673c7029649d4eb9d5e33bf1872cf76d623ff164ac185da9e88c21a5"],
    ["54657374436f6e74657874", "e9e43065102c3836401bed8c3c3c75ae46be1639869391d62c61f1ec7af54931"],
  ],
} as const;

const ours = (kem = kemX25519(), aead = AEAD_AES_256_GCM) =>
  new HPKE.CipherSuite(kem, KDF_HKDF_SHA256, aead);
/** The library's own suite: X25519, HMAC and AES-GCM from WebCrypto, an independent path. */
const webCrypto = (): HPKE.CipherSuite =>
  new HPKE.CipherSuite(
    HPKE.KEM_DHKEM_X25519_HKDF_SHA256,
    HPKE.KDF_HKDF_SHA256,
    HPKE.AEAD_AES_256_GCM,
  ) as unknown as HPKE.CipherSuite;
const hexOf = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("RFC 9180 A.1.1 with OpenSSL's X25519, HMAC and AES-GCM", () => {
  it("derives the vector's key pairs from their ikm", async () => {
    const s = ours(kemX25519(), AEAD_AES_128_GCM);
    for (const [ikm, sk, pk] of [
      [A11.ikmE, A11.skEm, A11.pkEm],
      [A11.ikmR, A11.skRm, A11.pkRm],
    ] as const) {
      const kp = await s.DeriveKeyPair(ikm, true);
      assert.equal(hexOf(await s.SerializePrivateKey(kp.privateKey)), hexOf(sk));
      assert.equal(hexOf(await s.SerializePublicKey(kp.publicKey)), hexOf(pk));
    }
  });

  it("seals and exports as the vector does (fixed ephemeral), and opens it", async () => {
    const s = ours(kemX25519({ ephemeralPrivateKey: A11.skEm }), AEAD_AES_128_GCM);
    const pkR = await s.DeserializePublicKey(A11.pkRm);
    const { encapsulatedSecret, ctx } = await s.SetupSender(pkR, { info: A11.info });
    assert.equal(hexOf(encapsulatedSecret), hexOf(A11.pkEm));
    for (const [aad, ct] of A11.seal) assert.equal(hexOf(await ctx.Seal(A11.pt, hex(aad))), ct);
    for (const [context, secret] of A11.exports)
      assert.equal(hexOf(await ctx.Export(hex(context), 32)), secret);

    const skR = await s.DeserializePrivateKey(A11.skRm, false);
    const rx = await s.SetupRecipient(skR, A11.pkEm, { info: A11.info });
    for (const [aad, ct] of A11.seal)
      assert.equal(hexOf(await rx.Open(hex(ct), hex(aad))), hexOf(A11.pt));
  });
});

describe("interoperation with the library's WebCrypto suite (AES-256-GCM, as the stanzas)", () => {
  it("what one seals the other opens, both ways", async () => {
    const [a, b] = [ours(), webCrypto()];
    for (const [sender, recipient] of [
      [a, b],
      [b, a],
    ] as const) {
      const kp = await recipient.GenerateKeyPair(true);
      const sk = await recipient.SerializePrivateKey(kp.privateKey);
      const pk = await recipient.SerializePublicKey(kp.publicKey);
      const info = randomBytes(40);
      const pt = randomBytes(32);
      const sealed = await sender.Seal(await sender.DeserializePublicKey(pk), pt, { info });
      // Extractable: the WebCrypto suite derives the public key by export on Node 20.
      const skR = await recipient.DeserializePrivateKey(sk, true);
      const got = await recipient.Open(skR, sealed.encapsulatedSecret, sealed.ciphertext, { info });
      assert.equal(hexOf(got), hexOf(pt));
      // Another info derives another key: the open fails.
      await assert.rejects(() =>
        recipient.Open(skR, sealed.encapsulatedSecret, sealed.ciphertext, { info: pt }),
      );
    }
  });
});

interface XdhTest extends WycheproofTest {
  readonly public: string;
  readonly private: string;
  readonly shared: string;
}

describe("attacks the KEM refuses", () => {
  // Wycheproof's public keys of low order: X25519 gives an all-zero shared secret with them.
  const lowOrder = loadWycheproof<XdhTest>("x25519_test.json")
    .testGroups.flatMap((g) => g.tests)
    .filter((t) => t.flags.includes("ZeroSharedSecret"));

  it("finds Wycheproof's low-order public keys (the list is not empty)", () => {
    assert.ok(lowOrder.length >= 20, `${lowOrder.length} low-order vectors`);
  });

  it("a low-order point as enc does not decapsulate; as a recipient it is not sealed to", async () => {
    const s = ours();
    for (const t of lowOrder) {
      const skR = await s.DeserializePrivateKey(hex(t.private), false);
      await assert.rejects(() => s.SetupRecipient(skR, hex(t.public)), `tcId ${t.tcId} decap`);
      await assert.rejects(async () => {
        await s.SetupSender(await s.DeserializePublicKey(hex(t.public)));
      }, `tcId ${t.tcId} encap`);
    }
  });

  it("the x25519 stanza: a low-order recipient is E_KEY, a low-order enc E_DECRYPT", async () => {
    const fileKey = randomBytes(32);
    const zero = Buffer.alloc(32);
    await assert.rejects(
      () => wrapX25519(zero, fileKey),
      (e) => isTensorSealError(e, "E_KEY"),
    );
    const { privateKey: skRaw, publicKey: pk } = generateX25519KeyPair();
    const good = await wrapX25519(pk, fileKey);
    assert.deepEqual(await unwrapX25519(good, skRaw), fileKey);
    for (const t of lowOrder.slice(0, 5)) {
      const forged = { type: "x25519", fields: [x25519Tag(pk), hex(t.public), good.fields[2]!] };
      await assert.rejects(
        () => unwrapX25519(forged, skRaw),
        (e) => isTensorSealError(e, "E_DECRYPT"),
      );
    }
  });

  it("keys from another suite are refused, not used", async () => {
    const s = ours();
    const theirs = await webCrypto().GenerateKeyPair(true);
    await assert.rejects(() => s.Seal(theirs.publicKey, randomBytes(32)));
    const kp = await s.GenerateKeyPair(false);
    const sealed = await s.Seal(kp.publicKey, randomBytes(32));
    await assert.rejects(() =>
      s.Open(theirs.privateKey, sealed.encapsulatedSecret, sealed.ciphertext),
    );
    // Nor is the private key read out when it was made non-extractable.
    await assert.rejects(() => s.SerializePrivateKey(kp.privateKey));
  });

  it("a modified ciphertext, tag or enc does not open, and nothing of it is returned", async () => {
    const s = ours();
    const kp = await s.GenerateKeyPair(false);
    const pt = randomBytes(32);
    const { encapsulatedSecret: enc, ciphertext: ct } = await s.Seal(kp.publicKey, pt);
    assert.equal(hexOf(await s.Open(kp.privateKey, enc, ct)), hexOf(pt));
    for (const at of [0, 31, 32, ct.length - 1]) {
      const bad = Buffer.from(ct);
      bad[at]! ^= 1;
      await assert.rejects(() => s.Open(kp.privateKey, enc, bad), `byte ${at}`);
    }
    const badEnc = Buffer.from(enc);
    badEnc[0]! ^= 1;
    await assert.rejects(() => s.Open(kp.privateKey, badEnc, ct));
    await assert.rejects(
      () => s.Open(kp.privateKey, enc, ct.subarray(0, 15)),
      "shorter than a tag",
    );
  });
});
