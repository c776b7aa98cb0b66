/**
 * The nonce binding modes of `POST /v1/datakeys/unwrap-attested` (request field `binding`):
 * "info" (nonce inside the HPKE info, empty aad: what pyca's hpke can open; the TS client's
 * mode) and "aad" (the original mode, still the default for clients that name none). Each
 * release only opens under its own mode and nonce; an unknown mode is refused before any key
 * is touched; the audit entry records the mode.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  openAttestedRelease,
  ServiceClient,
  sealAttestedRelease,
  stanzaFromWire,
  unwrapAttested,
} from "../../src/keys/service/index.js";
import { generateX25519KeyPair } from "../../src/keys/x25519-key.js";
import { ensureDevTls, ephemeralKeyBinding } from "../../src/service/index.js";
import { assertSchemaRefusal, attestedServiceForFile, VERIFIER } from "./attested-fixture.js";
import { lastAuditEntry, server } from "./helpers.js";

const fx = attestedServiceForFile("attest-binding");

/** An attested release of secure's key to a fresh X25519 key, `binding` as given (or none). */
async function request(binding?: unknown) {
  const nonce = await fx.challenge();
  const eph = generateX25519KeyPair();
  const evidence = await fx.verifier.issue({
    nonce,
    tensorseal_ephemeral_key: ephemeralKeyBinding(eph.publicKey),
    tee: "sev-snp",
  });
  const r = await fx.release({
    evidence,
    ephemeralPublicKey: Buffer.from(eph.publicKey).toString("base64"),
    ...(binding === undefined ? {} : { binding }),
  });
  return { nonce, eph, r };
}

describe("attested release: nonce binding modes", () => {
  test('binding "info": opens only as info-bound, under its own nonce; audited with the mode', async () => {
    const { nonce, eph, r } = await request("info");
    assert.equal(r.statusCode, 200, r.body);
    const sealed = r.json();
    const fk = await openAttestedRelease(eph.privateKey, sealed, nonce, "info");
    assert.equal(fk.toString("base64"), fx.secure.fileKey);
    // The nonce is really bound: another nonce, or the aad reading, does not open it.
    const other = `${nonce.slice(0, -1)}${nonce.endsWith("A") ? "B" : "A"}`;
    await assert.rejects(
      () => openAttestedRelease(eph.privateKey, sealed, other, "info"),
      /does not open/,
    );
    await assert.rejects(() => openAttestedRelease(eph.privateKey, sealed, nonce, "aad"));
    const e = await lastAuditEntry(fx.db);
    assert.equal(e.outcome, "allowed");
    assert.equal(e.action, "datakeys.unwrap-attested");
    assert.equal((e.resource as { binding?: string }).binding, "info");
  });

  test('no binding field (existing clients) is the "aad" mode; an explicit "aad" too', async () => {
    for (const binding of [undefined, "aad"]) {
      const { nonce, eph, r } = await request(binding);
      assert.equal(r.statusCode, 200, r.body);
      const fk = await openAttestedRelease(eph.privateKey, r.json(), nonce);
      assert.equal(fk.toString("base64"), fx.secure.fileKey);
      await assert.rejects(() => openAttestedRelease(eph.privateKey, r.json(), nonce, "info"));
      const e = await lastAuditEntry(fx.db);
      assert.equal((e.resource as { binding?: string }).binding, "aad");
    }
  });

  test("an unknown mode is refused (400), no key material in the answer", async () => {
    for (const binding of ["AAD", "none", "", 1, null]) {
      const { r } = await request(binding);
      assert.equal(r.statusCode, 400, `${JSON.stringify(binding)}: ${r.body}`);
      assert.match(r.json().message, /binding/);
      assert.ok(!r.body.includes("ciphertext"));
      assert.ok(!r.body.includes(fx.secure.fileKey));
      // Refused by the route's schema before any evidence or key is looked at, and audited.
      await assertSchemaRefusal(fx.db, "binding");
    }
  });

  test("sealAttestedRelease/openAttestedRelease round-trip per mode, never across", async () => {
    const eph = generateX25519KeyPair();
    const fk = Buffer.alloc(32, 7);
    for (const mode of ["aad", "info"] as const) {
      const s = await sealAttestedRelease(eph.publicKey, fk, "n1", mode);
      assert.ok((await openAttestedRelease(eph.privateKey, s, "n1", mode)).equals(fk));
      await assert.rejects(() => openAttestedRelease(eph.privateKey, s, "n2", mode));
      const other = mode === "aad" ? "info" : "aad";
      await assert.rejects(() => openAttestedRelease(eph.privateKey, s, "n1", other));
    }
  });

  test('the TS client (unwrapAttested) uses the "info" mode over TLS', async () => {
    const home = mkdtempSync(join(tmpdir(), "tensorseal-attest-binding-tls-"));
    const dev = await ensureDevTls(home);
    const tlsApp = await server(fx.db, {
      tls: dev,
      attestation: { issuer: VERIFIER, keys: fx.verifier.keySet(), nonceTtlMs: 30_000 },
    });
    try {
      const url = await tlsApp.listen({ host: "127.0.0.1", port: 0 });
      const client = new ServiceClient({
        url,
        token: fx.unwrapper,
        ca: readFileSync(dev.caPath, "utf8"),
      });
      try {
        const fk = await unwrapAttested(client, stanzaFromWire(fx.secure.stanza), async (q) =>
          fx.verifier.issue({ nonce: q.nonce, tensorseal_ephemeral_key: q.ephemeralKeyBinding }),
        );
        assert.equal(fk.toString("base64"), fx.secure.fileKey);
        const e = await lastAuditEntry(fx.db);
        assert.equal(e.action, "datakeys.unwrap-attested");
        assert.equal((e.resource as { binding?: string }).binding, "info");
      } finally {
        client.close();
      }
    } finally {
      await tlsApp.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
