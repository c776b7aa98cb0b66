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
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import {
  openAttestedRelease,
  ServiceClient,
  sealAttestedRelease,
  stanzaFromWire,
  unwrapAttested,
} from "../../src/keys/service/index.js";
import { generateX25519KeyPair } from "../../src/keys/x25519-key.js";
import { type Database, ensureDevTls, ephemeralKeyBinding } from "../../src/service/index.js";
import { type AttestedService, startAttestedService, VERIFIER } from "./attested-fixture.js";
import { bearer, lastAuditEntry, server } from "./helpers.js";
import type { TestIssuer } from "./verifier.js";

let fx: AttestedService;
let db: Database;
let app: FastifyInstance;
let verifier: TestIssuer;
let unwrapper: string;
let secure: AttestedService["secure"];

async function request(binding?: unknown) {
  const c = await app.inject({
    method: "POST",
    url: "/v1/attestation/challenge",
    headers: bearer(unwrapper),
    payload: {},
  });
  assert.equal(c.statusCode, 200, c.body);
  const nonce: string = c.json().nonce;
  const eph = generateX25519KeyPair();
  const evidence = await verifier.issue({
    nonce,
    tensorseal_ephemeral_key: ephemeralKeyBinding(eph.publicKey),
    tee: "sev-snp",
  });
  const r = await app.inject({
    method: "POST",
    url: "/v1/datakeys/unwrap-attested",
    headers: bearer(unwrapper),
    payload: {
      stanza: secure.stanza,
      evidence,
      ephemeralPublicKey: Buffer.from(eph.publicKey).toString("base64"),
      ...(binding === undefined ? {} : { binding }),
    },
  });
  return { nonce, eph, r };
}

before(async () => {
  fx = await startAttestedService("attest-binding");
  ({ db, app, verifier, unwrapper, secure } = fx);
});

after(() => fx.close());

describe("attested release: nonce binding modes", () => {
  test('binding "info": opens only as info-bound, under its own nonce; audited with the mode', async () => {
    const { nonce, eph, r } = await request("info");
    assert.equal(r.statusCode, 200, r.body);
    const sealed = r.json();
    const fk = await openAttestedRelease(eph.privateKey, sealed, nonce, "info");
    assert.equal(fk.toString("base64"), secure.fileKey);
    // The nonce is really bound: another nonce, or the aad reading, does not open it.
    const other = `${nonce.slice(0, -1)}${nonce.endsWith("A") ? "B" : "A"}`;
    await assert.rejects(
      () => openAttestedRelease(eph.privateKey, sealed, other, "info"),
      /does not open/,
    );
    await assert.rejects(() => openAttestedRelease(eph.privateKey, sealed, nonce, "aad"));
    const e = await lastAuditEntry(db);
    assert.equal(e.outcome, "allowed");
    assert.equal(e.action, "datakeys.unwrap-attested");
    assert.equal((e.resource as { binding?: string }).binding, "info");
  });

  test('no binding field (existing clients) is the "aad" mode; an explicit "aad" too', async () => {
    for (const binding of [undefined, "aad"]) {
      const { nonce, eph, r } = await request(binding);
      assert.equal(r.statusCode, 200, r.body);
      const fk = await openAttestedRelease(eph.privateKey, r.json(), nonce);
      assert.equal(fk.toString("base64"), secure.fileKey);
      await assert.rejects(() => openAttestedRelease(eph.privateKey, r.json(), nonce, "info"));
      const e = await lastAuditEntry(db);
      assert.equal((e.resource as { binding?: string }).binding, "aad");
    }
  });

  test("an unknown mode is refused (400), no key material in the answer", async () => {
    for (const binding of ["AAD", "none", "", 1, null]) {
      const { r } = await request(binding);
      assert.equal(r.statusCode, 400, `${JSON.stringify(binding)}: ${r.body}`);
      assert.match(r.json().message, /binding/);
      assert.ok(!r.body.includes("ciphertext"));
      assert.ok(!r.body.includes(secure.fileKey));
      // Refused by the route's schema before any evidence or key is looked at, and audited.
      const e = await lastAuditEntry(db);
      assert.equal(e.action, "datakeys.unwrap-attested");
      assert.equal(e.outcome, "error");
      assert.equal(e.status, 400);
      assert.match(String(e.reason), /^body\/binding must be /);
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
    const tlsApp = await server(db, {
      tls: dev,
      attestation: { issuer: VERIFIER, keys: verifier.keySet(), nonceTtlMs: 30_000 },
    });
    try {
      const url = await tlsApp.listen({ host: "127.0.0.1", port: 0 });
      const client = new ServiceClient({
        url,
        token: unwrapper,
        ca: readFileSync(dev.caPath, "utf8"),
      });
      try {
        const fk = await unwrapAttested(client, stanzaFromWire(secure.stanza), async (q) =>
          verifier.issue({ nonce: q.nonce, tensorseal_ephemeral_key: q.ephemeralKeyBinding }),
        );
        assert.equal(fk.toString("base64"), secure.fileKey);
        const e = await lastAuditEntry(db);
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
