/**
 * Tiers on the key service (serve --tier-policy; src/service/tiers.ts), on SQLite and
 * PostgreSQL: a key's tier (its sensitivity) caps its rotation period on create and PATCH
 * (409 tier_violation, audited); a tier requiring attestation refuses plain and batch unwraps
 * (403, audited as a denial, no key in the answer) while attested release still works; a tier
 * requiring dual control turns schedule-destroy into an approval request even with --approvals
 * at 1; the unwrap answer carries the tier's client cache TTL and the client's data-key cache
 * honours it. The policy file parser refuses unknown tiers and fields.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { isTensorSealError } from "../../src/format/errors.js";
import {
  type AttestedKem,
  generateAttestedKeyPair,
  openAttestedRelease,
} from "../../src/keys/service/attested.js";
import { DataKeyCache } from "../../src/keys/service/datakey-cache.js";
import { encodeX25519Recipient } from "../../src/keys/x25519.js";
import { generateX25519KeyPair } from "../../src/keys/x25519-key.js";
import { ephemeralKeyBinding } from "../../src/service/index.js";
import { BUILTIN_SERVICE_TIERS, parseTierPolicy, TierPolicy } from "../../src/service/tiers.js";
import {
  type AuditEntryView,
  describeEachDb,
  inject,
  lastAuditEntry,
  server,
  token,
} from "./helpers.js";
import { TestIssuer } from "./verifier.js";

const DAY = 86_400;
const VERIFIER = "https://verifier.test";

describeEachDb("tiers on the key service", (suite) => {
  let app: FastifyInstance;
  let admin: string;
  let user: string;
  let verifier: TestIssuer;

  const req = (method: "POST" | "PATCH" | "GET", url: string, t: string, payload?: unknown) =>
    inject(app, method, url, t, payload);
  const last = () => lastAuditEntry<AuditEntryView>(suite.db);

  before(async () => {
    if (suite.skip) return;
    verifier = await TestIssuer.create(VERIFIER, "EdDSA");
    app = await server(suite.db, {
      sweepEveryMs: 0,
      tiers: new TierPolicy(BUILTIN_SERVICE_TIERS),
      attestation: { issuer: VERIFIER, keys: verifier.keySet(), nonceTtlMs: 30_000 },
    });
    admin = await token(suite.db, "admin,wrap");
    user = await token(suite.db, "unwrap,wrap");
  });
  after(async () => {
    if (suite.skip) return;
    await app.close();
  });

  test("a key's tier caps its rotation period: created with it, longer or none refused", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const r = await req("POST", "/v1/keys", admin, { name: "crown", sensitivity: "restricted" });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().rotationPeriod, 90 * DAY, "created with the tier's period");
    assert.ok(r.json().rotationDue, "and so has a due date");
    const shorter = await req("PATCH", "/v1/keys/crown", admin, { rotationPeriod: 30 * DAY });
    assert.equal(shorter.statusCode, 200, shorter.body);
    for (const bad of [91 * DAY, null]) {
      const p = await req("PATCH", "/v1/keys/crown", admin, { rotationPeriod: bad });
      assert.equal(p.statusCode, 409, p.body);
      assert.equal(p.json().error, "tier_violation");
      assert.match(p.json().message, /tier restricted requires a rotation period of at most 90d/);
      const e = await last();
      assert.equal(e.action, "keys.update");
      assert.equal(e.outcome, "error");
    }
    const still = await req("GET", "/v1/keys/crown", admin);
    assert.equal(still.json().rotationPeriod, 30 * DAY, "nothing changed by a refusal");

    // Moving a key with a longer period (or none) into a stricter tier is refused too.
    assert.equal((await req("POST", "/v1/keys", admin, { name: "loose" })).statusCode, 200);
    const up = await req("PATCH", "/v1/keys/loose", admin, { sensitivity: "confidential" });
    assert.equal(up.statusCode, 409, up.body);
    assert.match(up.json().message, /tier confidential .* at most 365d: key loose would have none/);
    const both = await req("PATCH", "/v1/keys/loose", admin, {
      sensitivity: "confidential",
      rotationPeriod: 180 * DAY,
    });
    assert.equal(both.statusCode, 200, both.body);
    assert.equal(both.json().sensitivity, "confidential");
    // Internal has no maximum: removing the period is fine there.
    const internal = await req("POST", "/v1/keys", admin, {
      name: "free",
      sensitivity: "internal",
    });
    assert.equal(internal.json().rotationPeriod, null);
    const none = await req("PATCH", "/v1/keys/free", admin, { rotationPeriod: null });
    assert.equal(none.statusCode, 200, none.body);
  });

  test("restricted: plain and batch unwraps refused (audited), attested release works", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const g = await req("POST", "/v1/datakeys/generate", user, { key: "crown" });
    assert.equal(g.statusCode, 200, g.body);
    const { stanza, fileKey } = g.json();
    const u = await req("POST", "/v1/datakeys/unwrap", user, { stanza });
    assert.equal(u.statusCode, 403, u.body);
    assert.equal(u.json().error, "tier_violation");
    assert.match(u.json().message, /only with attestation evidence/);
    assert.ok(!u.body.includes(fileKey), "no key in the refusal");
    const e = await last();
    assert.equal(e.action, "datakeys.unwrap");
    assert.equal(e.outcome, "denied");
    assert.match(String(e.reason), /tier restricted/);

    const b = await req("POST", "/v1/datakeys/unwrap-batch", user, { stanzas: [stanza] });
    assert.equal(b.statusCode, 200, b.body);
    assert.equal(b.json().results[0].error, "tier_violation");
    assert.ok(!b.body.includes(fileKey));

    // The attested path releases it (sealed to the ephemeral key the evidence binds), and only
    // with the post-quantum KEM: the tier is postQuantum.
    const attested = async (kem: AttestedKem) => {
      const c = await req("POST", "/v1/attestation/challenge", user, {});
      assert.equal(c.statusCode, 200, c.body);
      const eph = await generateAttestedKeyPair(kem);
      const evidence = await verifier.issue({
        nonce: c.json().nonce,
        tensorseal_ephemeral_key: ephemeralKeyBinding(eph.publicKey),
        tee: "sev-snp",
        measurement: "m-good",
        debug: false,
      });
      const a = await req("POST", "/v1/datakeys/unwrap-attested", user, {
        stanza,
        evidence,
        ephemeralPublicKey: eph.publicKey.toString("base64"),
        ...(kem === "x25519" ? {} : { kem }),
      });
      return { a, eph, nonce: c.json().nonce as string };
    };
    const classical = await attested("x25519");
    assert.equal(classical.a.statusCode, 403, classical.a.body);
    assert.equal(classical.a.json().error, "tier_violation");
    assert.match(classical.a.json().message, /post-quantum KEM/);
    assert.ok(!classical.a.body.includes(fileKey));
    const refusal = await last();
    assert.equal(refusal.action, "datakeys.unwrap-attested");
    assert.equal(refusal.outcome, "denied");

    const pq = await attested("mlkem768x25519");
    assert.equal(pq.a.statusCode, 200, pq.a.body);
    const opened = await openAttestedRelease(
      pq.eph.privateKey,
      pq.a.json(),
      pq.nonce,
      "aad",
      "mlkem768x25519",
    );
    assert.equal(opened.toString("base64"), fileKey);
  });

  test("unwrap answers carry the tier's client cache TTL", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const conf = await req("POST", "/v1/datakeys/generate", user, { key: "loose" });
    const r = await req("POST", "/v1/datakeys/unwrap", user, { stanza: conf.json().stanza });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().cacheMaxAge, 300, "confidential: 300 s");
    const free = await req("POST", "/v1/datakeys/generate", user, { key: "free" });
    const f = await req("POST", "/v1/datakeys/unwrap", user, { stanza: free.json().stanza });
    assert.equal(f.statusCode, 200, f.body);
    assert.equal(f.json().cacheMaxAge, undefined, "internal: no limit from the service");
    const batch = await req("POST", "/v1/datakeys/unwrap-batch", user, {
      stanzas: [conf.json().stanza, free.json().stanza],
    });
    assert.deepEqual(
      batch.json().results.map((x: { cacheMaxAge?: number }) => x.cacheMaxAge),
      [300, undefined],
    );
  });

  test("restricted: schedule-destroy needs a second approval although --approvals is 1", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    assert.equal((await req("POST", "/v1/keys/crown/rotate", admin)).statusCode, 200);
    const d = await req("POST", "/v1/keys/crown/versions/1/schedule-destroy", admin, {});
    assert.equal(d.statusCode, 202, d.body);
    assert.equal(d.json().required, 2);
    assert.equal(d.json().state, "pending");
    const k = await req("GET", "/v1/keys/crown", admin);
    assert.equal(k.json().versions[0].state, "enabled", "nothing scheduled yet");
    // A key of a tier without dual control is scheduled at once, as before.
    assert.equal((await req("POST", "/v1/keys/loose/rotate", admin)).statusCode, 200);
    const l = await req("POST", "/v1/keys/loose/versions/1/schedule-destroy", admin, {});
    assert.equal(l.statusCode, 200, l.body);
    // The export operation is raised the same way.
    const x = await req("POST", "/v1/approvals", admin, {
      operation: "export",
      key: "crown",
      version: 2,
      recipient: encodeX25519Recipient(generateX25519KeyPair().publicKey),
    });
    assert.equal(x.statusCode, 202, x.body);
    assert.equal(x.json().required, 2);
    assert.equal(x.json().state, "pending", "not exported by the requester alone");
  });
});

test("tier policy files: strict, durations, unknown tiers and fields refused", () => {
  const p = parseTierPolicy(
    JSON.stringify({
      restricted: { rotationPeriod: "30d", attestation: true, dualControl: true, cacheTtl: 0 },
      confidential: { cacheTtl: "5m" },
    }),
    "tiers.json",
  );
  assert.deepEqual(p.of("restricted"), {
    name: "restricted",
    rotationPeriod: 30 * DAY,
    attestation: true,
    dualControl: true,
    cacheTtl: 0,
    postQuantum: false,
    recipients: null,
  });
  assert.equal(p.cacheTtl("confidential"), 300);
  assert.equal(p.of("internal"), null, "a tier left out has no minimums");
  assert.equal(p.of("unspecified"), null);
  const refused = (text: string, re: RegExp) =>
    assert.throws(
      () => parseTierPolicy(text, "tiers.json"),
      (e) => isTensorSealError(e, "E_USAGE") && re.test(e.message),
    );
  refused(`{"secret": {}}`, /unknown tier "secret"/);
  refused(`{"restricted": {"attest": true}}`, /unknown field "attest" in restricted/);
  refused(`{"restricted": {"postQuantum": 1}}`, /restricted.postQuantum must be true or false/);
  assert.equal(
    parseTierPolicy(`{"restricted": {"postQuantum": true}}`, "t").of("restricted")?.postQuantum,
    true,
  );
  refused(`{"restricted": {"attestation": "yes"}}`, /restricted.attestation must be true or false/);
  refused(`{"restricted": {"rotationPeriod": "ninety"}}`, /rotationPeriod must be a duration/);
  refused(`[1]`, /a JSON object by tier name/);
  assert.deepEqual(
    parseTierPolicy(`{"restricted": {"recipients": ["service", "pkcs11"]}}`, "t").of("restricted")
      ?.recipients,
    ["service", "pkcs11"],
  );
  refused(
    `{"restricted": {"recipients": ["hsm"]}}`,
    /restricted.recipients must be a list of recipient kinds/,
  );
  refused(`{`, /not JSON/);
});

test("the client's data-key cache honours the service's cacheMaxAge", () => {
  let now = 0;
  const cache = new DataKeyCache({ maxAgeMs: 60_000, maxUses: 10 }, () => now);
  const stanza = (n: number) => ({ type: "service", fields: [Buffer.from([n])] });
  const fk = Buffer.alloc(32, 7);
  cache.put(stanza(1), fk, 0);
  assert.equal(cache.get(stanza(1)), null, "0: never cached");
  cache.put(stanza(2), fk, 5_000);
  cache.put(stanza(3), fk);
  now = 4_000;
  assert.ok(cache.get(stanza(2)), "within the service's limit");
  now = 5_000;
  assert.equal(cache.get(stanza(2)), null, "expired at the service's limit, before maxAge");
  assert.ok(cache.get(stanza(3)), "no limit from the service: the cache's own maxAge");
  cache.close();
});
