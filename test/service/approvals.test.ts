/**
 * Dual control (SQLite and PostgreSQL): destroy, export and policy changes need M approvals
 * from distinct principals (the requester counts as the first); every attack on that rule is
 * refused and audited, and the audit chain still verifies.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import {
  openServiceStanza,
  parseServiceStanza,
  stanzaFromWire,
} from "../../src/keys/service/index.js";
import { encodeX25519Recipient, unwrapX25519 } from "../../src/keys/x25519.js";
import { generateX25519KeyPair } from "../../src/keys/x25519-key.js";
import type { Database } from "../../src/service/index.js";
import { DEFAULT_POLICIES, verifyAuditLog } from "../../src/service/index.js";
import {
  auditEntries,
  bearer,
  describeEachDb,
  inject,
  server,
  sqliteDb,
  token,
} from "./helpers.js";

const HOUR = 3_600_000;

interface Entry {
  action: string;
  outcome: string;
  principal: string | null;
  resource?: Record<string, unknown>;
  reason?: string;
}

describeEachDb("dual control", (suite) => {
  let db2: Database;
  let app: FastifyInstance;
  /** A second replica on the same database. */
  let app2: FastifyInstance;
  const t: Record<"a1" | "a2" | "a3" | "user" | "reader", string> = {
    a1: "",
    a2: "",
    a3: "",
    user: "",
    reader: "",
  };
  let clock = Date.parse("2030-01-01T00:00:00Z");

  const req = (
    method: "POST" | "GET",
    url: string,
    who: keyof typeof t,
    payload?: unknown,
    on = app,
  ) => inject(on, method, url, t[who], payload);
  const entries = () => auditEntries<Entry>(suite.db);
  const versionState = async (key: string, v: number) => {
    const k = (await req("GET", "/v1/keys", "a1"))
      .json()
      .keys.find((x: { name: string }) => x.name === key);
    return k.versions.find((x: { version: number }) => x.version === v).state as string;
  };
  const newKey = async (name: string) => {
    assert.equal((await req("POST", "/v1/keys", "a1", { name })).statusCode, 200);
    assert.equal((await req("POST", `/v1/keys/${name}/rotate`, "a1")).statusCode, 200);
  };
  const requestDestroy = async (key: string) => {
    const r = await req("POST", `/v1/keys/${key}/versions/1/schedule-destroy`, "a1", {});
    assert.equal(r.statusCode, 202, r.body);
    return r.json().approval as string;
  };

  before(async () => {
    if (suite.skip) return;
    db2 = await suite.tdb.open();
    const opts = {
      now: () => clock,
      sweepEveryMs: 0,
      policyCacheMs: 50,
      approvals: { required: { destroy: 2, export: 3, policy: 2 } },
    };
    app = await server(suite.db, opts);
    app2 = await server(db2, opts);
    for (const a of ["a1", "a2", "a3"] as const) t[a] = await token(suite.db, "admin");
    t.user = await token(suite.db, "wrap,unwrap");
    t.reader = await token(suite.db, "reader");
    await newKey("m");
  });
  after(async () => {
    if (suite.skip) return;
    await app.close();
    await app2.close();
    await db2.close();
  });

  test("destroy needs two distinct admins: requester alone, self-approval and a non-admin are refused", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    const id = await requestDestroy("m");
    assert.match(id, /^apr_[0-9a-f]{24}$/);
    assert.equal(await versionState("m", 1), "enabled", "nothing happens on request");
    const show = (await req("GET", `/v1/approvals/${id}`, "a2")).json();
    assert.equal(show.state, "pending");
    assert.equal(show.required, 2);
    assert.deepEqual(show.params, { key: "m", version: 1, days: 7 });

    // the requester approving their own request: refused, audited
    const self = await req("POST", `/v1/approvals/${id}/approve`, "a1");
    assert.equal(self.statusCode, 409);
    assert.match(self.json().message, /requester's own approval is already counted/);
    let last = (await entries()).at(-1)!;
    assert.equal(last.action, "approvals.approve");
    assert.equal(last.outcome, "error");

    // a principal without the admin role: denied (403) and audited
    for (const who of ["user", "reader"] as const) {
      const r = await req("POST", `/v1/approvals/${id}/approve`, who);
      assert.equal(r.statusCode, 403);
      last = (await entries()).at(-1)!;
      assert.equal(last.action, "approvals.approve");
      assert.equal(last.outcome, "denied");
    }
    assert.equal(await versionState("m", 1), "enabled");

    // a second, distinct admin executes it
    const ok = await req("POST", `/v1/approvals/${id}/approve`, "a2");
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.json().state, "executed");
    assert.equal(ok.json().executed, true);
    assert.equal(ok.json().outcome.key, "m");
    assert.equal(await versionState("m", 1), "scheduled");
    const exec = (await entries()).filter(
      (e) => e.action === "approvals.execute" && e.resource?.approval === id,
    );
    assert.equal(exec.length, 1);
    assert.ok(Array.isArray(exec[0]!.resource!.approvers));
    assert.equal((exec[0]!.resource!.approvers as string[]).length, 2);
    assert.equal(exec[0]!.resource!.operation, "destroy");
    // closed: no more votes
    const again = await req("POST", `/v1/approvals/${id}/approve`, "a3");
    assert.equal(again.statusCode, 409);
    assert.match(again.json().message, /is executed/);
  });

  test("an expired request never executes", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    await newKey("e");
    const id = await requestDestroy("e");
    clock += 25 * HOUR;
    const r = await req("POST", `/v1/approvals/${id}/approve`, "a2");
    assert.equal(r.statusCode, 409);
    assert.match(r.json().message, /is expired/);
    assert.equal((await req("GET", `/v1/approvals/${id}`, "a2")).json().state, "expired");
    assert.equal(await versionState("e", 1), "enabled");
    const ex = (await entries()).filter((e) => e.action === "approvals.expire");
    assert.equal(ex.length, 1);
    assert.equal(ex[0]!.resource!.approval, id);
  });

  test("a rejected request never executes", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    await newKey("r");
    const id = await requestDestroy("r");
    const rj = await req("POST", `/v1/approvals/${id}/reject`, "a2");
    assert.equal(rj.statusCode, 200, rj.body);
    assert.equal(rj.json().state, "rejected");
    assert.deepEqual(rj.json().outcome, { rejectedBy: (await entries()).at(-1)!.principal });
    const r = await req("POST", `/v1/approvals/${id}/approve`, "a3");
    assert.equal(r.statusCode, 409);
    assert.match(r.json().message, /is rejected/);
    assert.equal(await versionState("r", 1), "enabled");
    const list = (await req("GET", "/v1/approvals?state=rejected", "a1")).json().approvals;
    assert.deepEqual(
      list.map((a: { id: string }) => a.id),
      [id],
    );
  });

  test("concurrent approvals on two replicas execute once", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    await newKey("c");
    const id = await requestDestroy("c");
    const [x, y] = await Promise.all([
      req("POST", `/v1/approvals/${id}/approve`, "a2"),
      req("POST", `/v1/approvals/${id}/approve`, "a3", undefined, app2),
    ]);
    const executed = [x, y].filter((r) => r.statusCode === 200 && r.json().executed === true);
    assert.equal(executed.length, 1, `${x.body} ${y.body}`);
    for (const r of [x, y]) assert.ok([200, 409].includes(r.statusCode), r.body);
    const exec = (await entries()).filter(
      (e) => e.action === "approvals.execute" && e.resource?.approval === id,
    );
    assert.equal(exec.length, 1);
    assert.equal(await versionState("c", 1), "scheduled");
  });

  test("export: three distinct admins; the requester gets the sealed KEK once; it opens to the same material", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    const g = (await req("POST", "/v1/datakeys/generate", "user", { key: "m" })).json();
    assert.equal(g.version, 2);
    const { privateKey, publicKey } = generateX25519KeyPair();
    const recipient = encodeX25519Recipient(publicKey);
    const bad = await req("POST", "/v1/approvals", "a1", {
      operation: "export",
      key: "m",
      version: 2,
      recipient: "tseal1notarecipient",
    });
    assert.equal(bad.statusCode, 400);
    // Well-formed (the schema's pattern) but the bech32 checksum fails: 422, not 400.
    const last = recipient.at(-1) === "q" ? "p" : "q";
    const checksum = await req("POST", "/v1/approvals", "a1", {
      operation: "export",
      key: "m",
      version: 2,
      recipient: `${recipient.slice(0, -1)}${last}`,
    });
    assert.equal(checksum.statusCode, 422, checksum.body);
    assert.equal(checksum.json().error, "unprocessable");
    const denied = await req("POST", "/v1/approvals", "user", {
      operation: "export",
      key: "m",
      version: 2,
      recipient,
    });
    assert.equal(denied.statusCode, 403);
    const r = await req("POST", "/v1/approvals", "a1", {
      operation: "export",
      key: "m",
      version: 2,
      recipient,
    });
    assert.equal(r.statusCode, 202, r.body);
    const id = r.json().id as string;
    assert.equal(r.json().required, 3);
    const a2 = await req("POST", `/v1/approvals/${id}/approve`, "a2");
    assert.equal(a2.json().state, "pending");
    // the same admin twice: refused
    const twice = await req("POST", `/v1/approvals/${id}/approve`, "a2");
    assert.equal(twice.statusCode, 409);
    assert.match(twice.json().message, /already voted.*distinct principals/);
    const a3 = await req("POST", `/v1/approvals/${id}/approve`, "a3", undefined, app2);
    assert.equal(a3.json().state, "executed", a3.body);
    assert.equal(a3.json().result, undefined, "the approver does not get the result");
    assert.equal(a3.json().resultAvailable, true);
    // only the requester, only once
    assert.equal((await req("GET", `/v1/approvals/${id}`, "a2")).json().result, undefined);
    const mine = (await req("GET", `/v1/approvals/${id}`, "a1")).json();
    assert.ok(mine.result?.stanza, JSON.stringify(mine));
    const again = (await req("GET", `/v1/approvals/${id}`, "a1")).json();
    assert.equal(again.result, undefined);
    assert.equal(again.resultAvailable, false);
    const stanza = {
      type: mine.result.stanza.type as string,
      fields: (mine.result.stanza.fields as string[]).map((f) => Buffer.from(f, "base64")),
    };
    const kek = await unwrapX25519(stanza, privateKey);
    assert.ok(kek);
    const fk = openServiceStanza(parseServiceStanza(stanzaFromWire(g.stanza)), kek);
    assert.equal(fk.toString("base64"), g.fileKey);
    // neither the ciphertext nor the key is in the audit log
    const all = JSON.stringify(await entries());
    for (const f of mine.result.stanza.fields as string[]) assert.ok(!all.includes(f));
    assert.ok(!all.includes(kek.toString("base64")));
    assert.ok(!all.includes(kek.toString("hex")));
  });

  test("policy change: invalid set refused; an approved set takes effect on both replicas", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    const p0 = (await req("GET", "/v1/policies", "a1")).json();
    assert.equal(p0.version, 0);
    assert.match(p0.digest, /^[0-9a-f]{64}$/);
    assert.equal((await req("GET", "/v1/policies", "reader")).statusCode, 403);
    const invalid = await req("POST", "/v1/approvals", "a1", {
      operation: "policy",
      files: { "x.cedar": 'permit (principal, action == TensorSeal::Action::"nope", resource);' },
    });
    assert.equal(invalid.statusCode, 422);
    assert.match(invalid.json().message, /do not validate|nope/);
    const broken = await req("POST", "/v1/approvals", "a1", {
      operation: "policy",
      files: { "x.cedar": "permit (" },
    });
    assert.equal(broken.statusCode, 422);

    // reader may list artifacts now; the new set forbids it
    assert.equal((await req("GET", "/v1/artifacts", "reader")).statusCode, 200);
    assert.equal((await req("GET", "/v1/artifacts", "reader", undefined, app2)).statusCode, 200);
    const base = Object.entries(DEFAULT_POLICIES)
      .map(([pid, p]) => `@id("${pid}")\n${p}`)
      .join("\n");
    const files = {
      "base.cedar": base,
      "extra.cedar":
        '@id("no-reader-listing")\nforbid (principal in TensorSeal::Role::"reader", action == TensorSeal::Action::"artifacts:read", resource);',
    };
    const r = await req("POST", "/v1/approvals", "a1", { operation: "policy", files });
    assert.equal(r.statusCode, 202, r.body);
    const id = r.json().id as string;
    assert.equal((await req("GET", "/v1/artifacts", "reader")).statusCode, 200, "not yet");
    const ok = await req("POST", `/v1/approvals/${id}/approve`, "a2");
    assert.equal(ok.json().state, "executed", ok.body);
    assert.equal(ok.json().outcome.version, 1);
    assert.equal((await req("GET", "/v1/artifacts", "reader")).statusCode, 403);
    const last = (await entries()).at(-1)!;
    assert.equal(last.outcome, "denied");
    assert.match(last.reason ?? "", /no-reader-listing/);
    await new Promise((res) => setTimeout(res, 80)); // the replica's policy cache (50 ms)
    assert.equal((await req("GET", "/v1/artifacts", "reader", undefined, app2)).statusCode, 403);
    const p1 = (await req("GET", "/v1/policies", "a1", undefined, app2)).json();
    assert.equal(p1.version, 1);
    assert.equal(p1.digest, ok.json().outcome.digest);
    assert.ok(p1.policies["no-reader-listing"]);
  });

  test("a policy proposal against a set that changed since refuses to execute", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    const files = (text: string) => ({
      "base.cedar": Object.entries(DEFAULT_POLICIES)
        .map(([pid, p]) => `@id("${pid}")\n${p}`)
        .join("\n"),
      "x.cedar": text,
    });
    const a = await req("POST", "/v1/approvals", "a1", {
      operation: "policy",
      files: files("// a"),
    });
    const b = await req("POST", "/v1/approvals", "a1", {
      operation: "policy",
      files: files("// b"),
    });
    assert.equal(
      (await req("POST", `/v1/approvals/${a.json().id}/approve`, "a2")).json().state,
      "executed",
    );
    const stale = await req("POST", `/v1/approvals/${b.json().id}/approve`, "a2");
    assert.equal(stale.statusCode, 409);
    assert.match(stale.json().message, /changed since this proposal/);
    assert.equal((await req("GET", `/v1/approvals/${b.json().id}`, "a1")).json().state, "failed");
    assert.equal((await req("GET", "/v1/policies", "a1")).json().version, 2);
  });

  test("every step is audited and the chain verifies", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    const actions = new Set((await entries()).map((e) => e.action));
    for (const a of [
      "keys.schedule-destroy",
      "approvals.request",
      "approvals.approve",
      "approvals.reject",
      "approvals.expire",
      "approvals.execute",
      "approvals.show",
      "approvals.list",
      "policies.read",
    ])
      assert.ok(actions.has(a), a);
    const v = await verifyAuditLog(suite.db);
    assert.equal(v.ok, true, JSON.stringify(v));
  });
});

describe("dual control off (the default, M = 1)", () => {
  test("schedule-destroy acts at once; an approval request executes for the requester alone", async () => {
    const tdb = sqliteDb();
    const db = await tdb.open();
    const app = await server(db, { sweepEveryMs: 0 });
    try {
      const admin = await token(db, "admin");
      const h = bearer(admin);
      await app.inject({ method: "POST", url: "/v1/keys", headers: h, payload: { name: "k" } });
      await app.inject({ method: "POST", url: "/v1/keys/k/rotate", headers: h });
      const d = await app.inject({
        method: "POST",
        url: "/v1/keys/k/versions/1/schedule-destroy",
        headers: h,
        payload: {},
      });
      assert.equal(d.statusCode, 200, d.body);
      assert.ok(d.json().destroyAfter);
      const { publicKey } = generateX25519KeyPair();
      const r = await app.inject({
        method: "POST",
        url: "/v1/approvals",
        headers: h,
        payload: {
          operation: "export",
          key: "k",
          version: 2,
          recipient: encodeX25519Recipient(publicKey),
        },
      });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().state, "executed");
      assert.equal(r.json().approvers.length, 1);
    } finally {
      await app.close();
      await db.close();
      await tdb.drop();
    }
  });
});
