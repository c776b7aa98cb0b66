/**
 * The PKCS#11 provider against a real SoftHSM2 token that this file initialises in a temporary
 * directory. Without SoftHSM2 or pkcs11js the suite is skipped with the reason, unless
 * TENSORSEAL_REQUIRE_ALL=1 (CI), where a missing component fails the run.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { inspectFile, openFile, rewrapFile, sealFile } from "../../src/engine/index.js";
import { isTensorSealError } from "../../src/format/errors.js";
import type { Stanza } from "../../src/format/stanza.js";
import { closeModules } from "../../src/keys/pkcs11/module.js";
import { Pkcs11Provider, pinFromEnv } from "../../src/keys/pkcs11/provider.js";
import {
  describeKmsStanza,
  KMS_STANZA,
  PKCS11_PROVIDER,
  parseKmsStanza,
  parseProviderRecipient,
  providerIdentities,
  providerIdentity,
} from "../../src/keys/provider.js";
import { ProviderKeyPolicy } from "../../src/keys/provider-allow.js";
import { initSoftHsmToken, SOFTHSM_MODULE, softhsmMissing } from "./softhsm.js";

const MODULE = SOFTHSM_MODULE;
const TOKEN = "tseal-test";
const PIN = "4711-user";
const SO_PIN = "0815-so";
const allowToken = new ProviderKeyPolicy({ pkcs11: [TOKEN] });

const why = softhsmMissing();
if (why && process.env.TENSORSEAL_REQUIRE_ALL === "1") {
  test("SoftHSM2 is available (TENSORSEAL_REQUIRE_ALL=1)", () => assert.fail(why));
}

const rejectsWith = (code: string, pattern: RegExp) => (e: unknown) => {
  assert.ok(isTensorSealError(e), `expected a TensorSealError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.match(e.message, pattern);
  assert.ok(!e.message.includes(PIN), "the PIN must never appear in an error");
  return true;
};

describe("kms stanza framing and provider recipient strings (no token needed)", () => {
  const ok = (provider: string, ref: string, ...rest: Buffer[]): Stanza => ({
    type: KMS_STANZA,
    fields: [Buffer.from(provider), Buffer.from(ref), ...rest],
  });

  test("provider and key reference are checked strictly", () => {
    const s = ok("pkcs11", "tok/key", randomBytes(12), randomBytes(48));
    assert.equal(parseKmsStanza(s).keyRef, "tok/key");
    assert.equal(describeKmsStanza(s), "kms pkcs11 tok/key");
    const malformed = (x: Stanza) =>
      assert.throws(
        () => parseKmsStanza(x),
        (e: unknown) => isTensorSealError(e, "E_MALFORMED"),
      );
    malformed(ok("pkcs11", "tok/key"));
    malformed(ok("PKCS11", "tok/key", randomBytes(48)));
    malformed(ok("pkcs11", "", randomBytes(48)));
    malformed({
      type: KMS_STANZA,
      fields: [Buffer.from("pkcs11"), Buffer.from([0xff, 0xfe]), randomBytes(48)],
    });
    malformed(ok("pkcs11", "x".repeat(2049), randomBytes(48)));
  });

  test("a wrong pkcs11 stanza shape is E_MALFORMED before any token is touched", async () => {
    const p = new Pkcs11Provider({
      module: "/nonexistent.so",
      pin: () => assert.fail("no PIN needed"),
    });
    await assert.rejects(
      p.unwrap(ok("pkcs11", "tok/key", randomBytes(11), randomBytes(48))),
      (e: unknown) => isTensorSealError(e, "E_MALFORMED"),
    );
    assert.equal(await p.unwrap(ok("aws-kms", "arn:x", randomBytes(16), randomBytes(9))), null);
  });

  test("recipient strings", () => {
    assert.equal(parseProviderRecipient("tseal1abc"), null);
    assert.equal(parseProviderRecipient("pkcs11:tok/key")!.id, "pkcs11:tok/key");
    assert.equal(parseProviderRecipient("aws-kms:alias/x")!.id, "aws-kms:alias/x");
    for (const bad of ["pkcs11:tok", "pkcs11:/key", "pkcs11:tok/", "aws-kms:"]) {
      assert.throws(
        () => parseProviderRecipient(bad),
        (e: unknown) => isTensorSealError(e, "E_USAGE"),
        bad,
      );
    }
    const byId = parseProviderRecipient("aws-kms:1234abcd-12ab-34cd-56ef-1234567890ab")!;
    const arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    assert.ok(byId.matches(ok("aws-kms", arn, randomBytes(16), randomBytes(100))));
    assert.ok(!byId.matches(ok("pkcs11", arn, randomBytes(12), randomBytes(48))));
  });
});

describe("pkcs11 provider (SoftHSM2)", { skip: why ?? false }, () => {
  let dir: string;
  let provider: Pkcs11Provider;
  const keyRef = `${TOKEN}/model-root`;
  const data = randomBytes(200_000);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "tensorseal-hsm-"));
    initSoftHsmToken(dir, TOKEN, PIN, SO_PIN);
    provider = new Pkcs11Provider({ module: MODULE, pin: () => PIN });
    writeFileSync(join(dir, "weights.bin"), data);
  });

  after(() => {
    closeModules();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("creates a non-extractable, sensitive token key and refuses a duplicate label", async () => {
    assert.equal(await provider.generateKey(keyRef), keyRef);
    const a = await provider.keyAttributes(keyRef);
    assert.deepEqual(a, { token: true, sensitive: true, extractable: false, valueReadable: false });
    await assert.rejects(provider.generateKey(keyRef), rejectsWith("E_USAGE", /already has a key/));
  });

  test("wraps inside the token: kms stanza layout, round trip, tampering is E_DECRYPT", async () => {
    const fileKey = randomBytes(32);
    const s = await provider.wrap(fileKey, keyRef);
    assert.equal(s.type, KMS_STANZA);
    assert.deepEqual(
      s.fields.map((f) => f.length),
      [6, Buffer.byteLength(keyRef), 12, 48],
    );
    assert.equal(s.fields[0]!.toString(), "pkcs11");
    assert.ok(!s.fields[3]!.subarray(0, 32).equals(fileKey));
    assert.ok((await provider.unwrap(s))!.equals(fileKey));
    const flipped: Stanza = { type: s.type, fields: s.fields.map((f) => Buffer.from(f)) };
    flipped.fields[3]![5]! ^= 1;
    await assert.rejects(provider.unwrap(flipped), rejectsWith("E_DECRYPT", /does not open/));
    assert.equal(await provider.unwrap({ type: "kek", fields: [] }), null);
  });

  test("seals and opens a file through recipient and identity strings", async () => {
    const sealed = join(dir, "w.tseal");
    const recipient = parseProviderRecipient(`pkcs11:${keyRef}`)!;
    assert.equal(recipient.id, `pkcs11:${keyRef}`);
    await sealFile(join(dir, "weights.bin"), sealed, { recipients: [recipient], workers: 0 });
    const out = join(dir, "w.out");
    await openFile(sealed, out, {
      identities: providerIdentities({ pkcs11: [TOKEN] }),
      workers: 0,
    });
    assert.ok(readFileSync(out).equals(data));
  });

  test("a kms stanza spliced from another file fails the header MAC", async () => {
    const a = join(dir, "a.tseal");
    const b = join(dir, "b.tseal");
    const recipients = [parseProviderRecipient(`pkcs11:${keyRef}`)!];
    await sealFile(join(dir, "weights.bin"), a, { recipients, workers: 0 });
    await sealFile(join(dir, "weights.bin"), b, { recipients, workers: 0 });
    const fromB = (await inspectFile(b)).stanzas;
    const identities = [providerIdentity(async () => provider, PKCS11_PROVIDER, allowToken)];
    // Rewrite a's header (a valid MAC under a's file key) to hold only b's stanza.
    await rewrapFile(a, { identities, edit: async () => [...fromB] });
    await assert.rejects(
      openFile(a, join(dir, "a.out"), { identities, workers: 0 }),
      (e: unknown) => isTensorSealError(e, "E_HEADER_MAC"),
    );
  });

  test("a wrong PIN fails closed and says so, without the PIN", async () => {
    const wrong = new Pkcs11Provider({ module: MODULE, pin: () => `${PIN}-wrong` });
    const s = await provider.wrap(randomBytes(32), keyRef);
    await assert.rejects(
      wrong.unwrap(s),
      rejectsWith("E_PROVIDER", /pkcs11: .*wrong PIN.*CKR_PIN_INCORRECT/),
    );
    await assert.rejects(
      wrong.wrap(randomBytes(32), keyRef),
      rejectsWith("E_PROVIDER", /wrong PIN/),
    );
  });

  test("no PIN configured, a missing token and a missing key are E_PROVIDER with the reason", async () => {
    assert.throws(
      () => pinFromEnv({}),
      rejectsWith("E_PROVIDER", /no PIN: set TENSORSEAL_PKCS11_PIN/),
    );
    const pinFile = join(dir, "pin.txt");
    writeFileSync(pinFile, `${PIN}\n`, { mode: 0o600 });
    assert.equal(pinFromEnv({ TENSORSEAL_PKCS11_PIN_FILE: pinFile }), PIN);
    await assert.rejects(
      provider.wrap(randomBytes(32), "no-such-token/k"),
      rejectsWith("E_PROVIDER", /no token labelled "no-such-token"/),
    );
    await assert.rejects(
      provider.wrap(randomBytes(32), `${TOKEN}/no-such-key`),
      rejectsWith("E_PROVIDER", /no AES key labelled "no-such-key"/),
    );
    const badModule = new Pkcs11Provider({ module: join(dir, "missing.so"), pin: () => PIN });
    await assert.rejects(
      badModule.wrap(randomBytes(32), keyRef),
      rejectsWith("E_PROVIDER", /cannot load PKCS#11 module/),
    );
  });

  test("after the key is destroyed, open fails closed with a clear error", async () => {
    const doomed = `${TOKEN}/doomed`;
    await provider.generateKey(doomed);
    const sealed = join(dir, "doomed.tseal");
    const recipients = [parseProviderRecipient(`pkcs11:${doomed}`)!];
    await sealFile(join(dir, "weights.bin"), sealed, { recipients, workers: 0 });
    await provider.destroyKey(doomed);
    await assert.rejects(
      openFile(sealed, join(dir, "doomed.out"), {
        identities: providerIdentities({ pkcs11: [TOKEN] }),
        workers: 0,
      }),
      rejectsWith("E_PROVIDER", /no AES key labelled "doomed" in token tseal-test/),
    );
    assert.ok(!existsSync(join(dir, "doomed.out")));
  });
});
