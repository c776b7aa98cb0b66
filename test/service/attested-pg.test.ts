/**
 * Attested release on PostgreSQL (authz-matrix.test.ts runs the matrix on SQLite): two
 * replicas on one schema share the `nonces` table. A nonce issued by one replica is redeemed
 * on the other (allowed, HPKE-sealed file key, audited); replaying it on either is denied and
 * audited; the same presentation sent to both replicas at once is released once.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { openAttestedRelease } from "../../src/keys/service/index.js";
import { generateX25519KeyPair } from "../../src/keys/x25519-key.js";
import {
  Authorizer,
  type Database,
  DEFAULT_POLICIES,
  ephemeralKeyBinding,
  verifyAuditLog,
} from "../../src/service/index.js";
import {
  type AuditEntryView,
  bearer,
  lastAuditEntry,
  pgDb,
  server,
  type TestDb,
  token,
} from "./helpers.js";
import { TestIssuer } from "./verifier.js";

const VERIFIER = "https://verifier.test";
const POLICIES = {
  ...DEFAULT_POLICIES,
  "attested-needs-snp": `forbid (principal, action == TensorSeal::Action::"unwrap", resource == TensorSeal::Key::"secure")
    unless { context has attestation && context.attestation.tee == "sev-snp"
             && context.attestation.measurement == "m-good" && !context.attestation.debug };`,
};

const t = await pgDb();

describe("attested release on PostgreSQL, two replicas", {
  skip: typeof t === "string" ? t : false,
}, () => {
  const tdb = t as TestDb;
  let dbA: Database;
  let dbB: Database;
  let a: FastifyInstance;
  let b: FastifyInstance;
  let verifier: TestIssuer;
  let unwrapper: string;
  let stanza: unknown;
  let fileKey: string;

  const post = (app: FastifyInstance, url: string, payload: object, tok = unwrapper) =>
    app.inject({ method: "POST", url, headers: bearer(tok), payload });

  async function presentation(app: FastifyInstance, claims: Record<string, unknown> = {}) {
    const c = await post(app, "/v1/attestation/challenge", {});
    assert.equal(c.statusCode, 200, c.body);
    const nonce = c.json().nonce as string;
    const eph = generateX25519KeyPair();
    const evidence = await verifier.issue({
      nonce,
      tensorseal_ephemeral_key: ephemeralKeyBinding(eph.publicKey),
      tee: "sev-snp",
      measurement: "m-good",
      debug: false,
      ...claims,
    });
    const payload = {
      stanza,
      evidence,
      ephemeralPublicKey: Buffer.from(eph.publicKey).toString("base64"),
    };
    return { nonce, eph, payload };
  }

  async function assertReplayDenied(r: { statusCode: number; body: string }) {
    assert.equal(r.statusCode, 403, r.body);
    assert.ok(!r.body.includes("ciphertext") && !r.body.includes(fileKey), "nothing released");
    const e = await lastAuditEntry<AuditEntryView>(dbA);
    assert.equal(e.action, "datakeys.unwrap-attested");
    assert.equal(e.outcome, "denied");
    assert.match(String(e.reason), /nonce unknown, already used or expired/);
  }

  before(async () => {
    verifier = await TestIssuer.create(VERIFIER, "EdDSA");
    dbA = await tdb.open();
    dbB = await tdb.open();
    const opts = {
      sweepEveryMs: 0,
      authorizer: Authorizer.fromPolicies(POLICIES, "attested pg test"),
      attestation: { issuer: VERIFIER, keys: verifier.keySet(), nonceTtlMs: 30_000 },
    };
    a = await server(dbA, opts);
    b = await server(dbB, opts);
    const admin = await token(dbA, "admin,wrap");
    unwrapper = await token(dbA, "unwrap");
    assert.equal((await post(a, "/v1/keys", { name: "secure" }, admin)).statusCode, 200);
    const g = await post(a, "/v1/datakeys/generate", { key: "secure" }, admin);
    ({ stanza, fileKey } = g.json());
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await dbA?.close();
    await dbB?.close();
    await tdb.drop();
  });

  test("the key needs attestation: a plain unwrap is denied", async () => {
    const r = await post(a, "/v1/datakeys/unwrap", { stanza });
    assert.equal(r.statusCode, 403, r.body);
    assert.match(String((await lastAuditEntry<AuditEntryView>(dbA)).reason), /attested-needs-snp/);
  });

  test("nonce from replica A redeemed on B; replayed on A and on B: denied and audited", async () => {
    const { nonce, eph, payload } = await presentation(a);
    const r = await post(b, "/v1/datakeys/unwrap-attested", payload);
    assert.equal(r.statusCode, 200, r.body);
    assert.ok(!r.body.includes(fileKey), "the file key is not in clear");
    const fk = await openAttestedRelease(eph.privateKey, r.json(), nonce);
    assert.equal(fk.toString("base64"), fileKey);
    const e = await lastAuditEntry<AuditEntryView>(dbA);
    assert.equal(e.action, "datakeys.unwrap-attested");
    assert.equal(e.outcome, "allowed");
    assert.equal(e.requestId, r.headers["x-request-id"]);
    assert.deepEqual(e.authz, { decision: "allow", policies: ["default:unwrap"] });

    await assertReplayDenied(await post(a, "/v1/datakeys/unwrap-attested", payload));
    await assertReplayDenied(await post(b, "/v1/datakeys/unwrap-attested", payload));
  });

  test("a claim mismatch burns the nonce too (denied by policy, then replay denied)", async () => {
    const { payload } = await presentation(b, { measurement: "m-evil" });
    const r = await post(a, "/v1/datakeys/unwrap-attested", payload);
    assert.equal(r.statusCode, 403, r.body);
    const e = await lastAuditEntry<AuditEntryView>(dbA);
    assert.deepEqual(e.authz, { decision: "deny", policies: ["attested-needs-snp"] });
    await assertReplayDenied(await post(b, "/v1/datakeys/unwrap-attested", payload));
  });

  test("one presentation sent to both replicas at once is released once", async () => {
    for (let i = 0; i < 5; i++) {
      const { payload } = await presentation(i % 2 ? a : b);
      const rs = await Promise.all([
        post(a, "/v1/datakeys/unwrap-attested", payload),
        post(b, "/v1/datakeys/unwrap-attested", payload),
      ]);
      assert.deepEqual(
        rs.map((r) => r.statusCode).sort(),
        [200, 403],
        rs.map((r) => r.body).join(" | "),
      );
    }
    const v = await verifyAuditLog(dbB, { publicKey: a.tensorseal.auditPublicKey });
    assert.deepEqual(v.problems, []);
    assert.ok(v.ok);
  });
});
