/**
 * Cedar on key metadata and artifacts (SQLite and PostgreSQL): key labels and sensitivity
 * stored and fed to policies, the Artifact entity for register/show/list, and unwraps decided
 * with the artifact a stanza was registered with (context.artifact). Principals come from a
 * test authenticator so policies can use roles that are not token scopes.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { serviceStanzaDigest, stanzaFromWire } from "../../src/keys/service/index.js";
import {
  type Authenticator,
  Authorizer,
  DEFAULT_POLICIES,
  verifyAuditLog,
} from "../../src/service/index.js";
import { type AuditEntryView, describeEachDb, lastAuditEntry, server } from "./helpers.js";

const POLICIES: Record<string, string> = {
  ...DEFAULT_POLICIES,
  "sensitive-needs-secure": `forbid (principal, action == TensorSeal::Action::"unwrap", resource)
    when { resource.sensitivityLevel >= 3 } unless { principal in TensorSeal::Role::"secure" };`,
  "ml-team-wraps": `permit (principal in TensorSeal::Role::"ml", action == TensorSeal::Action::"wrap", resource)
    when { resource.labels.contains("team=ml") };`,
  "prod-hidden-from-readers": `forbid (principal in TensorSeal::Role::"reader",
    action == TensorSeal::Action::"artifacts:read", resource is TensorSeal::Artifact)
    when { resource.labels.contains("stage=prod") };`,
  "no-restricted-under-public": `forbid (principal, action == TensorSeal::Action::"artifacts:register", resource)
    when { resource.sensitivityLevel >= 4 && resource.key.sensitivityLevel <= 1 };`,
  "team-a-artifacts": `forbid (principal, action == TensorSeal::Action::"unwrap", resource)
    when { context has artifact && context.artifact.labels.contains("team=a") }
    unless { principal in TensorSeal::Role::"team-a" };`,
};

/** `Bearer test:<id>:<role,role>` → a Workload with those roles (test only). */
const testAuth: Authenticator = {
  async authenticate(req: FastifyRequest) {
    const m = /^Bearer test:([a-z-]+):([a-z,-]*)$/.exec(req.headers.authorization ?? "");
    if (!m) return null;
    return { id: `test:${m[1]}`, kind: "token", roles: (m[2] ?? "").split(",").filter(Boolean) };
  },
};

const as = (id: string, roles: string) => ({ authorization: `Bearer test:${id}:${roles}` });
const digest = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;
const FK = Buffer.alloc(32, 7).toString("base64");

describeEachDb("artifact and key-metadata authorization", (suite) => {
  let app: FastifyInstance;

  const call = (
    method: "POST" | "GET" | "PATCH",
    url: string,
    headers: Record<string, string>,
    payload?: unknown,
  ) =>
    app.inject({
      method,
      url,
      headers,
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
  const admin = as("admin", "admin");
  const last = () => lastAuditEntry<AuditEntryView>(suite.db);
  const wrap = async (key: string) => {
    const r = await call("POST", "/v1/datakeys/wrap", as("w", "wrap"), { key, fileKey: FK });
    assert.equal(r.statusCode, 200, r.body);
    return r.json().stanza as { type: string; fields: string[] };
  };

  before(async () => {
    if (suite.skip) return;
    app = await server(suite.db, {
      sweepEveryMs: 0,
      authenticators: [testAuth],
      authorizer: Authorizer.fromPolicies(POLICIES, "test"),
    });
    for (const k of [
      { name: "secret", sensitivity: "confidential" },
      { name: "pub", sensitivity: "public" },
      { name: "mlkey", labels: { team: "ml" } },
      { name: "shared" },
    ])
      assert.equal((await call("POST", "/v1/keys", admin, k)).statusCode, 200);
  });
  after(async () => {
    if (suite.skip) return;
    await app.close();
  });

  test("key labels and sensitivity are stored, listed, updated; defaults; bad values refused", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const keys = (await call("GET", "/v1/keys", admin)).json().keys as {
      name: string;
      labels: object;
      sensitivity: string;
    }[];
    const pick = (n: string) => keys.find((k) => k.name === n);
    assert.deepEqual(pick("mlkey")?.labels, { team: "ml" });
    assert.equal(pick("secret")?.sensitivity, "confidential");
    assert.deepEqual(
      { labels: pick("shared")?.labels, sensitivity: pick("shared")?.sensitivity },
      { labels: {}, sensitivity: "unspecified" },
    );
    // A row written without the 0007 columns (as before the migration) reads with the defaults.
    await suite.db.db
      .insertInto("keys")
      .values({ name: "legacy", created: new Date().toISOString(), primary_version: 1 })
      .execute();
    const legacy = await suite.db.db
      .selectFrom("keys")
      .select(["labels", "sensitivity"])
      .where("name", "=", "legacy")
      .executeTakeFirstOrThrow();
    assert.deepEqual(legacy, { labels: "{}", sensitivity: "unspecified" });
    const bad = await call("POST", "/v1/keys", admin, { name: "x", sensitivity: "high" });
    assert.equal(bad.statusCode, 400, bad.body);
    const badPatch = await call("PATCH", "/v1/keys/shared", admin, { sensitivity: "top" });
    assert.equal(badPatch.statusCode, 400);
    const p = await call("PATCH", "/v1/keys/shared", admin, { labels: { team: "b" } });
    assert.equal(p.statusCode, 200, p.body);
    assert.deepEqual(p.json().labels, { team: "b" });
    assert.equal(p.json().sensitivity, "unspecified");
    assert.deepEqual((await last()).resource, {
      key: "shared",
      minDecryptionVersion: 1,
      minEncryptionVersion: 1,
      labels: { team: "b" },
    });
  });

  test("forbid unwrap when sensitivityLevel >= 3 unless Role secure: denied and audited, lifted by PATCH", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const stanza = await wrap("secret");
    const denied = await call("POST", "/v1/datakeys/unwrap", as("u", "unwrap"), { stanza });
    assert.equal(denied.statusCode, 403, denied.body);
    assert.equal(denied.json().fileKey, undefined);
    const e = await last();
    assert.equal(e.outcome, "denied");
    assert.deepEqual(e.authz, { decision: "deny", policies: ["sensitive-needs-secure"] });
    const ok = await call("POST", "/v1/datakeys/unwrap", as("s", "unwrap,secure"), { stanza });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.json().fileKey, FK);
    // Lowering the key's sensitivity applies to the next decision (this replica's cache is cleared).
    const p = await call("PATCH", "/v1/keys/secret", admin, { sensitivity: "internal" });
    assert.equal(p.statusCode, 200);
    const now = await call("POST", "/v1/datakeys/unwrap", as("u", "unwrap"), { stanza });
    assert.equal(now.statusCode, 200, now.body);
    await call("PATCH", "/v1/keys/secret", admin, { sensitivity: "confidential" });
  });

  test("key labels in a permit: role ml wraps only under keys labelled team=ml", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const ml = as("ml", "ml");
    const ok = await call("POST", "/v1/datakeys/wrap", ml, { key: "mlkey", fileKey: FK });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual((await last()).authz, { decision: "allow", policies: ["ml-team-wraps"] });
    const no = await call("POST", "/v1/datakeys/wrap", ml, { key: "pub", fileKey: FK });
    assert.equal(no.statusCode, 403);
    assert.match(no.json().message, /no policy permits wrap on key pub/);
  });

  test("artifact labels: stage=prod hidden from readers in lists and denied on show", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const w = as("w", "wrap");
    for (const [id, stage] of [
      ["p1", "prod"],
      ["d1", "dev"],
    ] as const) {
      const r = await call("POST", "/v1/artifacts", w, {
        id,
        digest: digest(id),
        key: "mlkey",
        version: 1,
        labels: { stage },
      });
      assert.equal(r.statusCode, 200, r.body);
    }
    const reader = as("r", "reader");
    const list = await call("GET", "/v1/artifacts?key=mlkey", reader);
    assert.equal(list.statusCode, 200, list.body);
    assert.deepEqual(
      list.json().artifacts.map((a: { id: string }) => a.id),
      ["d1"],
    );
    assert.deepEqual((await last()).resource, { count: 1, hidden: 1, key: "mlkey" });
    const adminList = await call("GET", "/v1/artifacts?key=mlkey", admin);
    assert.deepEqual(
      adminList.json().artifacts.map((a: { id: string }) => a.id),
      ["d1", "p1"],
    );
    const show = await call("GET", "/v1/artifacts/p1", reader);
    assert.equal(show.statusCode, 403, show.body);
    const e = await last();
    assert.equal(e.outcome, "denied");
    assert.deepEqual(e.authz, { decision: "deny", policies: ["prod-hidden-from-readers"] });
    assert.equal((await call("GET", "/v1/artifacts/d1", reader)).statusCode, 200);
    // No read permission at all: 403 before the id is looked up (no 404 oracle).
    const nobody = await call("GET", "/v1/artifacts/missing", as("n", "unwrap"));
    assert.equal(nobody.statusCode, 403);
    assert.equal((await call("GET", "/v1/artifacts/missing", reader)).statusCode, 404);
  });

  test("registering a restricted artifact under a public key is denied by policy", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const w = as("w", "wrap");
    const reg = (id: string, key: string, sensitivity: string) =>
      call("POST", "/v1/artifacts", w, {
        id,
        digest: digest(id),
        key,
        version: 1,
        labels: { sensitivity },
      });
    const denied = await reg("r-pub", "pub", "restricted");
    assert.equal(denied.statusCode, 403, denied.body);
    assert.deepEqual((await last()).authz, {
      decision: "deny",
      policies: ["no-restricted-under-public"],
    });
    assert.equal((await call("GET", "/v1/artifacts/r-pub", admin)).statusCode, 404);
    assert.equal((await reg("r-secret", "secret", "restricted")).statusCode, 200);
    assert.equal((await reg("i-pub", "pub", "internal")).statusCode, 200);
    assert.equal((await reg("x-pub", "pub", "secret")).statusCode, 400);
  });

  test("unwrap of a stanza registered with team=a: only team-a principals, audited both ways", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const stanza = await wrap("shared");
    const sd = serviceStanzaDigest(stanzaFromWire(stanza));
    const plain = as("u", "unwrap");
    const teamA = as("a", "unwrap,team-a");
    // Not registered yet: no artifact, the default policy allows.
    assert.equal((await call("POST", "/v1/datakeys/unwrap", plain, { stanza })).statusCode, 200);
    const body = { digest: digest("team-a"), key: "shared", version: 1, labels: { team: "a" } };
    const reg = await call("POST", "/v1/artifacts", as("w", "wrap"), {
      ...body,
      id: "team-a-model",
      stanzaDigest: sd,
    });
    assert.equal(reg.statusCode, 200, reg.body);
    const denied = await call("POST", "/v1/datakeys/unwrap", plain, { stanza });
    assert.equal(denied.statusCode, 403, denied.body);
    let e = await last();
    assert.equal(e.outcome, "denied");
    assert.deepEqual(e.authz, { decision: "deny", policies: ["team-a-artifacts"] });
    const batch = await call("POST", "/v1/datakeys/unwrap-batch", plain, { stanzas: [stanza] });
    assert.equal(batch.statusCode, 403);
    const ok = await call("POST", "/v1/datakeys/unwrap", teamA, { stanza });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.json().fileKey, FK);
    e = await last();
    assert.equal(e.outcome, "allowed");
    assert.equal(e.principal, "test:a");
    // The first registration of a stanza wins: a second one is refused.
    const again = await call("POST", "/v1/artifacts", as("w", "wrap"), {
      ...body,
      labels: {},
      stanzaDigest: sd,
    });
    assert.equal(again.statusCode, 409, again.body);
    assert.match(again.json().message, /already registered with another artifact/);
  });

  test("a registration naming another key than its stanza is ignored (as if unregistered)", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const stanza = await wrap("shared");
    const r = await call("POST", "/v1/artifacts", as("w", "wrap"), {
      digest: digest("lie"),
      key: "pub",
      version: 1,
      labels: { team: "a" },
      stanzaDigest: serviceStanzaDigest(stanzaFromWire(stanza)),
    });
    assert.equal(r.statusCode, 200, r.body);
    const u = await call("POST", "/v1/datakeys/unwrap", as("u", "unwrap"), { stanza });
    assert.equal(u.statusCode, 200, u.body);
    const v = await verifyAuditLog(suite.db);
    assert.equal(v.ok, true, JSON.stringify(v));
  });
});
