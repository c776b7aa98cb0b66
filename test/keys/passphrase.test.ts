import assert from "node:assert/strict";
import { createDecipheriv, randomBytes, scryptSync } from "node:crypto";
import { describe, it } from "node:test";
import { isTensorSealError } from "../../src/format/errors.js";
import type { Stanza } from "../../src/format/stanza.js";
import {
  passphraseIdentity,
  passphraseRecipient,
  unwrapPassphrase,
  wrapPassphrase,
} from "../../src/keys/passphrase.js";

const code = (c: string) => (e: unknown) => isTensorSealError(e) && e.code === c;
const WF = { workFactor: 10 };

describe("passphrase stanza", () => {
  it("round-trips and has the documented shape", async () => {
    const fileKey = randomBytes(32);
    const s = await passphraseRecipient("correct horse", WF).wrap(fileKey);
    assert.equal(s.type, "passphrase");
    assert.deepEqual(
      s.fields.map((f) => f.length),
      [16, 1, 48],
    );
    assert.equal(s.fields[1]![0], 10);
    assert.deepEqual(await passphraseIdentity("correct horse").unwrap(s), fileKey);
  });

  it("matches the spec derivation computed independently", async () => {
    const fileKey = randomBytes(32);
    const salt = Buffer.alloc(16, 7);
    const s = await wrapPassphrase("pässword", fileKey, { workFactor: 10, salt });
    // NFC: "a" + combining diaeresis must give the same key as the precomposed "ä".
    const pw = Buffer.from("pa\u0308ssword".normalize("NFC"), "utf8");
    const key = scryptSync(
      pw,
      Buffer.concat([Buffer.from("tensorseal.dev/v1 passphrase\0"), salt]),
      32,
      {
        N: 1024,
        r: 8,
        p: 1,
      },
    );
    const d = createDecipheriv("aes-256-gcm", key, Buffer.alloc(12));
    d.setAuthTag(s.fields[2]!.subarray(32));
    const pt = Buffer.concat([d.update(s.fields[2]!.subarray(0, 32)), d.final()]);
    assert.deepEqual(pt, fileKey);
    assert.deepEqual(await unwrapPassphrase("pa\u0308ssword", s), fileKey);
    assert.deepEqual(s, await wrapPassphrase("pässword", fileKey, { workFactor: 10, salt }));
  });

  it("rejects a wrong passphrase with E_DECRYPT and no secret in the message", async () => {
    const s = await wrapPassphrase("right one", randomBytes(32), WF);
    await assert.rejects(unwrapPassphrase("wrong one", s), (e: unknown) => {
      assert.ok(isTensorSealError(e, "E_DECRYPT"));
      assert.match(e.message, /passphrase does not open this file/);
      assert.ok(!e.message.includes("wrong one") && !e.message.includes("right one"));
      return true;
    });
  });

  it("rejects a tampered salt, work factor or ciphertext", async () => {
    const s = await wrapPassphrase("pw", randomBytes(32), WF);
    for (const [i, b] of [
      [0, 0],
      [2, 0],
      [2, 47],
    ] as const) {
      const fields = s.fields.map((f) => Buffer.from(f));
      fields[i]![b]! ^= 1;
      await assert.rejects(unwrapPassphrase("pw", { type: s.type, fields }), code("E_DECRYPT"));
    }
    const fields = s.fields.map((f) => Buffer.from(f));
    fields[1]![0] = 11;
    await assert.rejects(unwrapPassphrase("pw", { type: s.type, fields }), code("E_DECRYPT"));
  });

  it("refuses logN 21 (and 255) before running scrypt", async () => {
    const s = await wrapPassphrase("pw", randomBytes(32), WF);
    for (const logN of [21, 255]) {
      const hostile: Stanza = {
        type: "passphrase",
        fields: [s.fields[0]!, Buffer.from([logN]), s.fields[2]!],
      };
      const t0 = performance.now();
      await assert.rejects(unwrapPassphrase("pw", hostile), (e: unknown) => {
        assert.ok(isTensorSealError(e, "E_UNSUPPORTED"));
        assert.match(e.message, new RegExp(`work factor 2\\^${logN} exceeds the limit 2\\^20`));
        return true;
      });
      // scrypt at 2^21 takes seconds and 2 GiB; a refusal takes microseconds.
      assert.ok(performance.now() - t0 < 1000, "refusal should not run scrypt");
    }
  });

  it("refuses logN below 10 on read", async () => {
    const s = await wrapPassphrase("pw", randomBytes(32), WF);
    const weak: Stanza = {
      type: "passphrase",
      fields: [s.fields[0]!, Buffer.from([9]), s.fields[2]!],
    };
    await assert.rejects(unwrapPassphrase("pw", weak), code("E_UNSUPPORTED"));
  });

  it("checks field counts and lengths exactly", async () => {
    const s = await wrapPassphrase("pw", randomBytes(32), WF);
    const bad: Stanza[] = [
      { type: "passphrase", fields: s.fields.slice(0, 2) },
      { type: "passphrase", fields: [s.fields[0]!.subarray(1), s.fields[1]!, s.fields[2]!] },
      { type: "passphrase", fields: [s.fields[0]!, Buffer.from([10, 0]), s.fields[2]!] },
      { type: "passphrase", fields: [s.fields[0]!, s.fields[1]!, s.fields[2]!.subarray(1)] },
      { type: "passphrase", fields: [...s.fields, Buffer.alloc(0)] },
    ];
    for (const b of bad) await assert.rejects(unwrapPassphrase("pw", b), code("E_MALFORMED"));
  });

  it("returns null for other stanza types; matches any passphrase stanza", async () => {
    assert.equal(await unwrapPassphrase("pw", { type: "x25519", fields: [] }), null);
    const r = passphraseRecipient("a", WF);
    const s = await passphraseRecipient("b", WF).wrap(randomBytes(32));
    assert.equal(r.id, "passphrase");
    assert.equal(r.matches(s), true);
    assert.equal(r.matches({ type: "kek", fields: [] }), false);
  });

  it("validates write arguments", async () => {
    await assert.rejects(wrapPassphrase("pw", randomBytes(32), { workFactor: 9 }), code("E_USAGE"));
    await assert.rejects(
      wrapPassphrase("pw", randomBytes(32), { workFactor: 21 }),
      code("E_USAGE"),
    );
    await assert.rejects(wrapPassphrase("", randomBytes(32), WF), code("E_USAGE"));
    await assert.rejects(wrapPassphrase("pw", randomBytes(31), WF), code("E_KEY"));
    assert.throws(() => passphraseRecipient("pw", 25), code("E_USAGE"));
    const salts = new Set<string>();
    for (let i = 0; i < 3; i++) {
      salts.add((await wrapPassphrase("pw", randomBytes(32), WF)).fields[0]!.toString("hex"));
    }
    assert.equal(salts.size, 3, "each wrap draws a fresh salt");
  });
});
