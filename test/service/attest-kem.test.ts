/**
 * The KEM of attested release (request field `kem`): "x25519" (default) or "mlkem768x25519"
 * (X-Wing, ML-KEM-768 + X25519). An X-Wing release opens only with its ephemeral seed and its
 * nonce, never as an X25519 release; an unknown KEM is refused by the schema (400, audited);
 * evidence bound to an X25519 key cannot be used with an X-Wing request; the audit records the
 * KEM; the TS client uses X-Wing by default and X25519 when asked.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  generateAttestedKeyPair,
  openAttestedRelease,
  ServiceClient,
  sealAttestedRelease,
  stanzaFromWire,
  unwrapAttested,
} from "../../src/keys/service/index.js";
import { ephemeralKeyBinding } from "../../src/service/index.js";
import { assertSchemaRefusal, attestedServiceForFile } from "./attested-fixture.js";
import { lastAuditEntry } from "./helpers.js";

const fx = attestedServiceForFile("attest-kem");
const release = (payload: Record<string, unknown>) => fx.release({ binding: "info", ...payload });

describe("attested release: KEM", () => {
  test("X-Wing: opens only with its ephemeral seed and nonce, not as X25519; audited with the KEM", async () => {
    const nonce = await fx.challenge();
    const eph = await generateAttestedKeyPair("mlkem768x25519");
    assert.equal(eph.publicKey.length, 1216);
    const evidence = await fx.verifier.issue({
      nonce,
      tensorseal_ephemeral_key: ephemeralKeyBinding(eph.publicKey),
      tee: "sev-snp",
    });
    const r = await release({
      evidence,
      ephemeralPublicKey: eph.publicKey.toString("base64"),
      kem: "mlkem768x25519",
    });
    assert.equal(r.statusCode, 200, r.body);
    const sealed = r.json();
    assert.equal(Buffer.from(sealed.enc, "base64").length, 1120); // an X-Wing encapsulation
    const fk = await openAttestedRelease(eph.privateKey, sealed, nonce, "info", "mlkem768x25519");
    assert.equal(fk.toString("base64"), fx.secure.fileKey);
    const e = await lastAuditEntry(fx.db);
    assert.equal(e.outcome, "allowed");
    const res = e.resource as { kem?: string; binding?: string };
    assert.equal(res.kem, "mlkem768x25519");
    assert.equal(res.binding, "info");
    // Another nonce, another seed, the other mode or the X25519 reading: none opens it.
    const other = `${nonce.slice(0, -1)}${nonce.endsWith("A") ? "B" : "A"}`;
    const stranger = await generateAttestedKeyPair("mlkem768x25519");
    const tries: [Buffer, string, "aad" | "info", "x25519" | "mlkem768x25519"][] = [
      [eph.privateKey, other, "info", "mlkem768x25519"],
      [stranger.privateKey, nonce, "info", "mlkem768x25519"],
      [eph.privateKey, nonce, "aad", "mlkem768x25519"],
      [eph.privateKey, nonce, "info", "x25519"],
    ];
    for (const [sk, n, mode, kem] of tries)
      await assert.rejects(() => openAttestedRelease(sk, sealed, n, mode, kem), /does not open/);
  });

  test("no kem field is X25519 (audited as such)", async () => {
    const nonce = await fx.challenge();
    const eph = await generateAttestedKeyPair("x25519");
    const evidence = await fx.verifier.issue({
      nonce,
      tensorseal_ephemeral_key: ephemeralKeyBinding(eph.publicKey),
    });
    const r = await release({ evidence, ephemeralPublicKey: eph.publicKey.toString("base64") });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(Buffer.from(r.json().enc, "base64").length, 32);
    const fk = await openAttestedRelease(eph.privateKey, r.json(), nonce, "info", "x25519");
    assert.equal(fk.toString("base64"), fx.secure.fileKey);
    assert.equal(((await lastAuditEntry(fx.db)).resource as { kem?: string }).kem, "x25519");
  });

  test("an unknown KEM is refused by the schema (400, audited), nothing released", async () => {
    const nonce = await fx.challenge();
    const eph = await generateAttestedKeyPair("x25519");
    const evidence = await fx.verifier.issue({
      nonce,
      tensorseal_ephemeral_key: ephemeralKeyBinding(eph.publicKey),
    });
    for (const kem of ["X25519", "mlkem768", "xwing", "", 1, null]) {
      const r = await release({
        evidence,
        ephemeralPublicKey: eph.publicKey.toString("base64"),
        kem,
      });
      assert.equal(r.statusCode, 400, `${JSON.stringify(kem)}: ${r.body}`);
      assert.match(r.json().message, /kem/);
      assert.ok(!r.body.includes("ciphertext"));
      await assertSchemaRefusal(fx.db, "kem");
    }
    // The nonce was never consumed (refused before the evidence): it still releases once.
    const ok = await release({ evidence, ephemeralPublicKey: eph.publicKey.toString("base64") });
    assert.equal(ok.statusCode, 200, ok.body);
  });

  test("evidence bound to an X25519 key cannot be used with an X-Wing request", async () => {
    const nonce = await fx.challenge();
    const x = await generateAttestedKeyPair("x25519");
    const xw = await generateAttestedKeyPair("mlkem768x25519");
    const bound = await fx.verifier.issue({
      nonce,
      tensorseal_ephemeral_key: ephemeralKeyBinding(x.publicKey),
      tee: "sev-snp",
    });
    // The X-Wing key presented with X25519-bound evidence: binding hash mismatch, 403.
    const r = await release({
      evidence: bound,
      ephemeralPublicKey: xw.publicKey.toString("base64"),
      kem: "mlkem768x25519",
    });
    assert.equal(r.statusCode, 403, r.body);
    assert.match(r.json().message, /not bound to the presented ephemeral key/);
    assert.ok(!r.body.includes("ciphertext"));
    // The X25519 key itself under kem "mlkem768x25519" (and the reverse): wrong size, 400.
    const wrong = await release({
      evidence: bound,
      ephemeralPublicKey: x.publicKey.toString("base64"),
      kem: "mlkem768x25519",
    });
    assert.equal(wrong.statusCode, 400, wrong.body);
    assert.match(wrong.json().message, /1216 bytes/);
    const reverse = await release({
      evidence: bound,
      ephemeralPublicKey: xw.publicKey.toString("base64"),
      kem: "x25519",
    });
    assert.equal(reverse.statusCode, 400, reverse.body);
    assert.match(reverse.json().message, /32 bytes/);
  });

  test("a 1216-byte X-Wing key that fails ML-KEM's key check: 400, nothing released", async () => {
    const nonce = await fx.challenge();
    // All-0xFF: every ML-KEM coefficient is out of range (FIPS 203 §7.2 modulus check).
    const bad = Buffer.alloc(1216, 0xff);
    const evidence = await fx.verifier.issue({
      nonce,
      tensorseal_ephemeral_key: ephemeralKeyBinding(bad),
    });
    const r = await release({
      evidence,
      ephemeralPublicKey: bad.toString("base64"),
      kem: "mlkem768x25519",
    });
    assert.equal(r.statusCode, 400, r.body);
    assert.match(r.json().message, /not a valid mlkem768x25519 key/);
    assert.ok(!r.body.includes("ciphertext"));
    const e = await lastAuditEntry(fx.db);
    assert.equal(e.action, "datakeys.unwrap-attested");
    assert.notEqual(e.outcome, "allowed");
  });

  test("sealAttestedRelease refuses a key of the other KEM; round-trips per KEM", async () => {
    const fk = Buffer.alloc(32, 9);
    for (const kem of ["x25519", "mlkem768x25519"] as const) {
      const eph = await generateAttestedKeyPair(kem);
      const other = await generateAttestedKeyPair(kem === "x25519" ? "mlkem768x25519" : "x25519");
      const s = await sealAttestedRelease(eph.publicKey, fk, "n1", "aad", kem);
      assert.ok((await openAttestedRelease(eph.privateKey, s, "n1", "aad", kem)).equals(fk));
      await assert.rejects(() => sealAttestedRelease(other.publicKey, fk, "n1", "aad", kem));
    }
  });

  test("unwrapAttested: X-Wing by default, X25519 when asked; the provider sees the KEM", async () => {
    const url = await fx.app.listen({ host: "127.0.0.1", port: 0 });
    const client = new ServiceClient({ url, token: fx.unwrapper });
    try {
      for (const kem of [undefined, "x25519", "mlkem768x25519"] as const) {
        const seen: { kem?: string; size: number }[] = [];
        const fk = await unwrapAttested(
          client,
          stanzaFromWire(fx.secure.stanza),
          async (q) => {
            seen.push({ kem: q.kem, size: q.ephemeralPublicKey.length });
            return fx.verifier.issue({
              nonce: q.nonce,
              tensorseal_ephemeral_key: q.ephemeralKeyBinding,
            });
          },
          kem ? { kem } : {},
        );
        assert.equal(fk.toString("base64"), fx.secure.fileKey);
        const want = kem ?? "mlkem768x25519";
        assert.deepEqual(seen, [{ kem: want, size: want === "x25519" ? 32 : 1216 }]);
        assert.equal(((await lastAuditEntry(fx.db)).resource as { kem?: string }).kem, want);
      }
    } finally {
      client.close();
    }
  });
});
