/** Artifact inventory over the API (SQLite and PostgreSQL): register, list by key/label with pages, show, 404, authorization. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { verifyAuditLog } from "../../src/service/index.js";
import {
  type AuditEntryView,
  describeEachDb,
  inject,
  lastAuditEntry,
  server,
  token,
} from "./helpers.js";

const digest = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

describeEachDb("artifact inventory", (suite) => {
  let app: FastifyInstance;
  let admin: string;
  let writer: string;
  let reader: string;
  let unwrapOnly: string;

  const req = (method: "POST" | "GET", url: string, t: string, payload?: unknown) =>
    inject(app, method, url, t, payload);
  const lastEntry = () => lastAuditEntry<AuditEntryView>(suite.db);

  before(async () => {
    if (suite.skip) return;
    app = await server(suite.db, { sweepEveryMs: 0 });
    admin = await token(suite.db, "admin");
    writer = await token(suite.db, "wrap");
    reader = await token(suite.db, "reader");
    unwrapOnly = await token(suite.db, "unwrap");
    for (const name of ["a", "b"])
      assert.equal((await req("POST", "/v1/keys", admin, { name })).statusCode, 200);
    await req("POST", "/v1/keys/a/rotate", admin);
  });
  after(async () => {
    if (suite.skip) return;
    await app.close();
  });

  test("register (client id and generated id), show, 404, conflict, validation", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const r = await req("POST", "/v1/artifacts", writer, {
      id: "model-1",
      digest: digest("one"),
      key: "a",
      version: 2,
      labels: { team: "ml", stage: "prod" },
      location: "s3://bucket/model-1.tseal",
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(
      { ...(r.json() as object), created: undefined },
      {
        id: "model-1",
        digest: digest("one"),
        key: "a",
        version: 2,
        labels: { stage: "prod", team: "ml" },
        location: "s3://bucket/model-1.tseal",
        created: undefined,
      },
    );
    const e = await lastEntry();
    assert.equal(e.action, "artifacts.register");
    assert.equal(e.outcome, "allowed");
    assert.deepEqual(e.resource, { artifact: "model-1", key: "a", version: 2 });

    const g = await req("POST", "/v1/artifacts", writer, {
      digest: digest("two"),
      key: "b",
      version: 1,
    });
    assert.equal(g.statusCode, 200, g.body);
    assert.match(g.json().id, /^art_[0-9a-f]{32}$/);
    assert.deepEqual(g.json().labels, {});
    assert.equal(g.json().location, undefined);

    const s = await req("GET", "/v1/artifacts/model-1", reader);
    assert.equal(s.statusCode, 200, s.body);
    assert.equal(s.json().digest, digest("one"));
    assert.equal((await req("GET", `/v1/artifacts/${g.json().id}`, admin)).json().key, "b");
    assert.equal((await lastEntry()).action, "artifacts.show");

    const nf = await req("GET", "/v1/artifacts/nope", reader);
    assert.equal(nf.statusCode, 404);
    assert.equal(nf.json().error, "not_found");
    assert.equal((await lastEntry()).outcome, "error");

    const dup = await req("POST", "/v1/artifacts", writer, {
      id: "model-1",
      digest: digest("x"),
      key: "a",
      version: 1,
    });
    assert.equal(dup.statusCode, 409);
    for (const bad of [
      { digest: "sha256:abc", key: "a", version: 1 },
      { digest: digest("x"), key: "a", version: 1, extra: 1 },
      { digest: digest("x"), key: "a", version: 1, labels: { "bad key": "v" } },
      { digest: digest("x"), key: "a", version: 1, labels: { k: 1 } },
    ])
      assert.equal(
        (await req("POST", "/v1/artifacts", writer, bad)).statusCode,
        400,
        JSON.stringify(bad),
      );
    // Schema-valid, but no such key or version: 404 (a schema-valid request is never 400).
    for (const [key, version] of [
      ["zz", 1],
      ["a", 3],
    ] as const)
      assert.equal(
        (await req("POST", "/v1/artifacts", writer, { digest: digest("x"), key, version }))
          .statusCode,
        404,
      );
  });

  test("list by key and by label, paginated with limit/cursor", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    for (let i = 0; i < 5; i++)
      await req("POST", "/v1/artifacts", writer, {
        id: `p-${i}`,
        digest: digest(`p${i}`),
        key: "b",
        version: 1,
        labels: { team: i % 2 ? "ml" : "ops", "x.y/z": `v=${i}` },
      });
    const all = (await req("GET", "/v1/artifacts", reader)).json();
    assert.equal(all.artifacts.length, 7);
    assert.equal(all.nextCursor, undefined);
    const byKey = (await req("GET", "/v1/artifacts?key=a", reader)).json();
    assert.deepEqual(
      byKey.artifacts.map((a: { id: string }) => a.id),
      ["model-1"],
    );
    const ml = (await req("GET", "/v1/artifacts?label=team%3Dml", reader)).json();
    assert.deepEqual(
      ml.artifacts.map((a: { id: string }) => a.id),
      ["model-1", "p-1", "p-3"],
    );
    const mlB = (await req("GET", "/v1/artifacts?key=b&label=team=ml", reader)).json();
    assert.deepEqual(
      mlB.artifacts.map((a: { id: string }) => a.id),
      ["p-1", "p-3"],
    );
    // a value containing '=' and a key with punctuation; no partial matches
    const eq = (
      await req("GET", `/v1/artifacts?label=${encodeURIComponent("x.y/z=v=2")}`, reader)
    ).json();
    assert.deepEqual(
      eq.artifacts.map((a: { id: string }) => a.id),
      ["p-2"],
    );
    assert.equal(
      (await req("GET", "/v1/artifacts?label=team=m", reader)).json().artifacts.length,
      0,
    );
    assert.equal(
      (await req("GET", "/v1/artifacts?label=eam=ml", reader)).json().artifacts.length,
      0,
    );
    assert.equal(
      (await req("GET", "/v1/artifacts?label=TEAM=ML", reader)).json().artifacts.length,
      0,
    );
    // pages of 2 over key b (6 artifacts): 2 + 2 + 2, no repeats
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await req(
        "GET",
        `/v1/artifacts?key=b&limit=2${cursor ? `&cursor=${cursor}` : ""}`,
        reader,
      );
      assert.equal(r.statusCode, 200, r.body);
      const j = r.json();
      seen.push(...j.artifacts.map((a: { id: string }) => a.id));
      cursor = j.nextCursor;
      pages++;
    } while (cursor);
    assert.equal(pages, 3);
    assert.equal(seen.length, 6);
    assert.equal(new Set(seen).size, 6);
    assert.deepEqual(seen.slice(1), ["p-0", "p-1", "p-2", "p-3", "p-4"]);
    assert.equal((await req("GET", "/v1/artifacts?limit=0", reader)).statusCode, 400);
    assert.equal((await req("GET", "/v1/artifacts?limit=1001", reader)).statusCode, 400);
    assert.equal((await req("GET", "/v1/artifacts?cursor=!!", reader)).statusCode, 400);
    assert.equal((await req("GET", "/v1/artifacts?label=novalue", reader)).statusCode, 400);
    const e = await lastEntry();
    assert.equal(e.status, 400);
  });

  test("denied without the role (Cedar) and audited; the chain verifies", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const body = { digest: digest("d"), key: "a", version: 1 };
    for (const [tok, m, url, payload] of [
      [reader, "POST", "/v1/artifacts", body],
      [unwrapOnly, "POST", "/v1/artifacts", body],
      [admin, "POST", "/v1/artifacts", body],
      [writer, "GET", "/v1/artifacts", undefined],
      [writer, "GET", "/v1/artifacts/model-1", undefined],
      [unwrapOnly, "GET", "/v1/artifacts", undefined],
    ] as const) {
      const r = await req(m, url, tok, payload);
      assert.equal(r.statusCode, 403, `${m} ${url}`);
      assert.equal(r.json().error, "forbidden");
      const e = await lastEntry();
      assert.equal(e.outcome, "denied");
      assert.equal(e.authz.decision, "deny");
      assert.match(e.action, /^artifacts\./);
    }
    assert.equal((await app.inject({ method: "GET", url: "/v1/artifacts" })).statusCode, 401);
    const doc = (await app.inject("/openapi.json")).json();
    assert.ok(doc.paths["/v1/artifacts"].post.requestBody);
    assert.ok(doc.paths["/v1/artifacts/{id}"].get);
    const v = await verifyAuditLog(suite.db);
    assert.equal(v.ok, true, JSON.stringify(v));
  });
});
