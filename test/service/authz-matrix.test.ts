/**
 * Negative authorization matrix (issue #4 §9) on SQLite: OIDC/JWT tokens, attested release and
 * Cedar policies. Every refusal is denied AND audited (decision deny with a reason) and carries
 * no file key; one allow path of each kind. The attested path also runs over a real TLS
 * loopback server with the dev CA and the keys-layer client.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import type { Stanza } from "../../src/format/stanza.js";
import {
  openAttestedRelease,
  ServiceClient,
  stanzaFromWire,
  unwrapAttested,
} from "../../src/keys/service/index.js";
import { generateX25519KeyPair } from "../../src/keys/x25519-key.js";
import {
  Authorizer,
  type Database,
  DEFAULT_POLICIES,
  ensureDevTls,
  ephemeralKeyBinding,
  loadKeySet,
  verifyAuditLog,
} from "../../src/service/index.js";
import {
  bearer,
  keyAndDataKey,
  lastAuditEntry,
  server,
  sqliteDb,
  type TestDb,
  token,
} from "./helpers.js";
import { TestIssuer } from "./verifier.js";

const ISS = "https://idp.test";
const AUD = "tensorseal";
const VERIFIER = "https://verifier.test";
const NONCE_TTL_MS = 1000;

const POLICIES = `
@id("attested-needs-snp")
forbid (principal, action == TensorSeal::Action::"unwrap", resource == TensorSeal::Key::"secure")
unless {
  context has attestation &&
  context.attestation.tee == "sev-snp" &&
  context.attestation.measurement == "m-good" &&
  !context.attestation.debug
};

@id("no-ci-on-prod")
forbid (principal, action == TensorSeal::Action::"unwrap", resource == TensorSeal::Key::"prod")
when { context.workload.kind == "ci" };
`;

let dir: string;
let tdb: TestDb;
let db: Database;
let app: FastifyInstance;
let idp: TestIssuer;
let stranger: TestIssuer;
let verifier: TestIssuer;
let admin: string;
let unwrapper: string;
const stanzas: Record<string, { stanza: { type: string; fields: string[] }; fileKey: string }> = {};

const lastEntry = () => lastAuditEntry(db);

function unwrap(headers: Record<string, string>, key: string) {
  return app.inject({
    method: "POST",
    url: "/v1/datakeys/unwrap",
    headers,
    payload: { stanza: stanzas[key]!.stanza },
  });
}

async function challenge(t: string): Promise<string> {
  const r = await app.inject({
    method: "POST",
    url: "/v1/attestation/challenge",
    headers: bearer(t),
    payload: {},
  });
  assert.equal(r.statusCode, 200, r.body);
  return r.json().nonce;
}

function workloadJwt(claims: Record<string, unknown>, o: Parameters<TestIssuer["issue"]>[1] = {}) {
  return idp.issue(
    {
      roles: ["unwrap"],
      "kubernetes.io": { namespace: "ml", serviceaccount: { name: "trainer" } },
      ...claims,
    },
    { audience: AUD, subject: "system:serviceaccount:ml:trainer", ...o },
  );
}

/** Evidence from the test verifier bound to `nonce` and the key; returns the pieces. */
async function attestedRequest(
  key: string,
  claims: Record<string, unknown> = {},
  o: { nonce?: string; bindTo?: Uint8Array } = {},
) {
  const nonce = o.nonce ?? (await challenge(unwrapper));
  const eph = generateX25519KeyPair();
  const evidence = await verifier.issue({
    nonce,
    tensorseal_ephemeral_key: ephemeralKeyBinding(o.bindTo ?? eph.publicKey),
    tee: "sev-snp",
    measurement: "m-good",
    debug: false,
    ...claims,
  });
  const payload = {
    stanza: stanzas[key]!.stanza,
    evidence,
    ephemeralPublicKey: Buffer.from(eph.publicKey).toString("base64"),
  };
  return { nonce, eph, payload };
}

function attested(t: string, payload: unknown) {
  return app.inject({
    method: "POST",
    url: "/v1/datakeys/unwrap-attested",
    headers: bearer(t),
    payload: payload as object,
  });
}

/** A refusal: status, no key material in the body, an audit entry with deny and the reason. */
async function assertDenied(
  r: { statusCode: number; body: string },
  status: 401 | 403,
  reason: RegExp,
  action = "datakeys.unwrap",
) {
  assert.equal(r.statusCode, status, r.body);
  for (const s of Object.values(stanzas)) assert.ok(!r.body.includes(s.fileKey), "no file key");
  assert.ok(!r.body.includes("ciphertext"));
  const e = await lastEntry();
  assert.equal(e.outcome, "denied");
  assert.equal(e.status, status);
  assert.equal(e.action, action);
  assert.match(String(e.reason), reason);
  if (status === 403) assert.equal((e.authz as { decision: string }).decision, "deny");
  return e;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "tensorseal-authz-"));
  idp = await TestIssuer.create(ISS);
  stranger = await TestIssuer.create(ISS);
  verifier = await TestIssuer.create(VERIFIER, "EdDSA");
  writeFileSync(
    join(dir, "00-default.cedar"),
    Object.entries(DEFAULT_POLICIES)
      .map(([id, p]) => `@id("${id}")\n${p}`)
      .join("\n\n"),
  );
  writeFileSync(join(dir, "10-release.cedar"), POLICIES);
  tdb = sqliteDb();
  db = await tdb.open();
  app = await server(db, {
    authorizer: await Authorizer.fromDir(dir),
    jwt: {
      issuer: ISS,
      audience: AUD,
      keys: await loadKeySet(idp.writeJwks(dir, "idp.json"), "--oidc-jwks"),
    },
    attestation: {
      issuer: VERIFIER,
      keys: await loadKeySet(verifier.writeJwks(dir, "verifier.json"), "--attestation-jwks"),
      nonceTtlMs: NONCE_TTL_MS,
    },
  });
  admin = await token(db, "admin,wrap");
  unwrapper = await token(db, "unwrap");
  for (const name of ["model", "secure", "prod"])
    stanzas[name] = await keyAndDataKey(app, admin, name);
});

after(async () => {
  await app.close();
  await db.close();
  await tdb.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe("OIDC/JWT bearer tokens", () => {
  test("allow: a Kubernetes service-account token with the unwrap role", async () => {
    const r = await unwrap(bearer(await workloadJwt({})), "model");
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().fileKey, stanzas.model!.fileKey);
    const e = await lastEntry();
    assert.equal(e.outcome, "allowed");
    assert.equal(e.principal, "jwt:system:serviceaccount:ml:trainer");
    assert.deepEqual(e.authz, { decision: "allow", policies: ["default:unwrap"] });
  });

  test("allow: a static token still works", async () => {
    const r = await unwrap(bearer(unwrapper), "model");
    assert.equal(r.statusCode, 200);
    assert.equal(r.json().fileKey, stanzas.model!.fileKey);
  });

  const cases: [string, () => Promise<string>, 401 | 403, RegExp][] = [
    [
      "wrong role",
      () => workloadJwt({ roles: ["wrap"] }),
      403,
      /no policy permits unwrap on key model/,
    ],
    ["expired", () => workloadJwt({}, { expiresIn: -120 }), 401, /^token expired$/],
    ["wrong audience", () => workloadJwt({}, { audience: "someone-else" }), 401, /claim aud/],
    ["wrong issuer", () => workloadJwt({}, { issuer: "https://evil.test" }), 401, /claim iss/],
    [
      "unsigned (alg none)",
      async () => idp.unsigned({ roles: ["unwrap"] }, { audience: AUD, subject: "x" }),
      401,
      /algorithm not allowed|malformed/,
    ],
    [
      "signed by an unknown key",
      () => stranger.issue({ roles: ["unwrap"] }, { audience: AUD, subject: "x" }),
      401,
      /unknown key/,
    ],
  ];
  for (const [name, make, status, reason] of cases) {
    test(`deny: ${name}`, async () => {
      const t = await make();
      const r = await unwrap(bearer(t), "model");
      const e = await assertDenied(r, status, reason);
      if (status === 401) {
        assert.match(String(e.principal), /^jwt-hmac:[0-9a-f]{16}$/);
        assert.ok(!JSON.stringify(e).includes(t), "the token is not in the audit");
      }
    });
  }

  test("deny: Cedar forbid (a CI workload on key prod), allowed on model", async () => {
    const ci = await idp.issue(
      { roles: ["unwrap"], repository: "org/repo", ref: "refs/heads/main" },
      { audience: AUD, subject: "repo:org/repo:ref:refs/heads/main" },
    );
    const e = await assertDenied(
      await unwrap(bearer(ci), "prod"),
      403,
      /forbidden by no-ci-on-prod/,
    );
    assert.deepEqual(e.authz, { decision: "deny", policies: ["no-ci-on-prod"] });
    assert.equal((await unwrap(bearer(ci), "model")).statusCode, 200);
  });

  test("deny: key `secure` without attestation (plain unwrap)", async () => {
    await assertDenied(
      await unwrap(bearer(unwrapper), "secure"),
      403,
      /forbidden by attested-needs-snp/,
    );
  });
});

describe("attestation-bound release", () => {
  test("allow: evidence bound to nonce and key; the file key comes back HPKE-sealed", async () => {
    const { nonce, eph, payload } = await attestedRequest("secure");
    const r = await attested(unwrapper, payload);
    assert.equal(r.statusCode, 200, r.body);
    assert.ok(!r.body.includes(stanzas.secure!.fileKey), "the file key is not in clear");
    const fk = await openAttestedRelease(eph.privateKey, r.json(), nonce);
    assert.equal(fk.toString("base64"), stanzas.secure!.fileKey);
    const e = await lastEntry();
    assert.equal(e.outcome, "allowed");
    assert.equal(e.action, "datakeys.unwrap-attested");
    assert.deepEqual(e.authz, { decision: "allow", policies: ["default:unwrap"] });
  });

  test("deny: replayed nonce", async () => {
    const { payload } = await attestedRequest("secure");
    assert.equal((await attested(unwrapper, payload)).statusCode, 200);
    await assertDenied(
      await attested(unwrapper, payload),
      403,
      /nonce unknown, already used or expired/,
      "datakeys.unwrap-attested",
    );
  });

  test("deny: stale nonce", async () => {
    const nonce = await challenge(unwrapper);
    await new Promise((r) => setTimeout(r, NONCE_TTL_MS + 150));
    const { payload } = await attestedRequest("secure", {}, { nonce });
    await assertDenied(
      await attested(unwrapper, payload),
      403,
      /nonce unknown, already used or expired/,
      "datakeys.unwrap-attested",
    );
  });

  test("deny: a nonce this service never issued", async () => {
    const { payload } = await attestedRequest("secure", {}, { nonce: "A".repeat(43) });
    await assertDenied(
      await attested(unwrapper, payload),
      403,
      /nonce unknown/,
      "datakeys.unwrap-attested",
    );
  });

  test("deny: evidence not bound to the presented ephemeral key", async () => {
    const other = generateX25519KeyPair();
    const { payload } = await attestedRequest("secure", {}, { bindTo: other.publicKey });
    await assertDenied(
      await attested(unwrapper, payload),
      403,
      /not bound to the presented ephemeral key/,
      "datakeys.unwrap-attested",
    );
  });

  for (const [name, claims] of [
    ["tee mismatch", { tee: "tdx" }],
    ["measurement mismatch", { measurement: "m-evil" }],
    ["debuggable TEE", { debug: true }],
  ] as const) {
    test(`deny: attestation claim versus policy (${name})`, async () => {
      const { payload } = await attestedRequest("secure", claims);
      const e = await assertDenied(
        await attested(unwrapper, payload),
        403,
        /forbidden by attested-needs-snp/,
        "datakeys.unwrap-attested",
      );
      assert.deepEqual(e.authz, { decision: "deny", policies: ["attested-needs-snp"] });
    });
  }

  test("deny: evidence from an unknown verifier key, expired evidence, wrong verifier issuer", async () => {
    const nonce = await challenge(unwrapper);
    const eph = generateX25519KeyPair();
    const claims = {
      nonce,
      tensorseal_ephemeral_key: ephemeralKeyBinding(eph.publicKey),
      tee: "sev-snp",
    };
    const rogue = await TestIssuer.create(VERIFIER, "EdDSA");
    for (const [evidence, reason] of [
      [await rogue.issue(claims), /unknown key/],
      [await verifier.issue(claims, { expiresIn: -120, issuedAt: -400 }), /expired|claim iat/],
      [await verifier.issue(claims, { issuer: ISS }), /claim iss/],
    ] as const) {
      const r = await attested(unwrapper, {
        stanza: stanzas.secure!.stanza,
        evidence,
        ephemeralPublicKey: Buffer.from(eph.publicKey).toString("base64"),
      });
      await assertDenied(r, 403, reason, "datakeys.unwrap-attested");
    }
  });

  test("deny: wrong role on attested release (token without unwrap)", async () => {
    const { payload } = await attestedRequest("model");
    await assertDenied(
      await attested(admin, payload),
      403,
      /no policy permits unwrap on key model/,
      "datakeys.unwrap-attested",
    );
  });

  test("the audit chain verifies after the whole matrix", async () => {
    const v = await verifyAuditLog(db, { publicKey: app.tensorseal.auditPublicKey });
    assert.equal(v.ok, true, v.problems.join("; "));
  });
});

describe("policy loading", () => {
  test("invalid policies refuse to load (schema validation)", async () => {
    const bad = mkdtempSync(join(tmpdir(), "tensorseal-badpol-"));
    try {
      writeFileSync(
        join(bad, "p.cedar"),
        'permit (principal, action, resource) when { context.attestation.tee == "x" };',
      );
      await assert.rejects(() => Authorizer.fromDir(bad), /do not validate against the schema/);
      writeFileSync(
        join(bad, "p.cedar"),
        "permit (principal, action, resource) when { resource.nosuch };",
      );
      await assert.rejects(() => Authorizer.fromDir(bad), /validate|parse/);
      writeFileSync(join(bad, "p.cedar"), "this is not cedar");
      await assert.rejects(() => Authorizer.fromDir(bad));
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});

describe("attested release over a real TLS loopback server", () => {
  let home: string;
  let tlsApp: FastifyInstance;
  let url: string;
  let ca: string;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), "tensorseal-att-tls-"));
    const dev = await ensureDevTls(home);
    ca = readFileSync(dev.caPath, "utf8");
    tlsApp = await server(db, {
      tls: dev,
      authorizer: await Authorizer.fromDir(dir),
      attestation: { issuer: VERIFIER, keys: verifier.keySet(), nonceTtlMs: NONCE_TTL_MS },
    });
    url = await tlsApp.listen({ host: "127.0.0.1", port: 0 });
  });

  after(async () => {
    await tlsApp.close();
    rmSync(home, { recursive: true, force: true });
  });

  test("unwrapAttested: nonce, evidence, HPKE-sealed key; a claim mismatch is E_PROVIDER", async () => {
    const client = new ServiceClient({ url, token: unwrapper, ca });
    const stanza: Stanza = stanzaFromWire(stanzas.secure!.stanza);
    try {
      const good = (tee: string) => async (r: { nonce: string; ephemeralKeyBinding: string }) =>
        verifier.issue({
          nonce: r.nonce,
          tensorseal_ephemeral_key: r.ephemeralKeyBinding,
          tee,
          measurement: "m-good",
          debug: false,
        });
      const fk = await unwrapAttested(client, stanza, good("sev-snp"));
      assert.equal(fk.toString("base64"), stanzas.secure!.fileKey);
      await assert.rejects(
        () => unwrapAttested(client, stanza, good("tdx")),
        (e: Error) => /forbidden by attested-needs-snp/.test(e.message),
      );
      const e = await lastEntry();
      assert.equal(e.outcome, "denied");
      assert.equal(e.action, "datakeys.unwrap-attested");
    } finally {
      client.close();
    }
  });
});
