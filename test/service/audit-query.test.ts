/**
 * Audit queries (SQLite and PostgreSQL): entries filtered by key, artifact, principal, action,
 * outcome and time through the index, exactly those the chain holds; an unwrap of a registered
 * stanza and a refused request name what they were about; the index of entries written before
 * it existed is built by the migration; the CLI reads the database and the API (whose entries'
 * hashes it recomputes).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { serviceStanzaDigest, stanzaFromWire } from "../../src/keys/service/index.js";
import { backfillAuditIndex } from "../../src/service/audit/index-store.js";
import { type AuditFilter, queryDatabase } from "../../src/service/index.js";
import { sandbox } from "../cli/helpers.js";
import { auditEntries, bearer, cliService, describeEachDb, server, token } from "./helpers.js";

const FK = Buffer.alloc(32, 9).toString("base64");
const digest = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

type Entry = Record<string, unknown> & { seq: number; resource?: Record<string, unknown> };

describeEachDb("audit query", (suite) => {
  let app: FastifyInstance;
  let admin: string;
  let writer: string;
  let opener: string;
  let reader: string;
  let auditor: string;
  let openerId: string;
  let middle = "";

  const call = (method: "GET" | "POST", url: string, t: string, payload?: object) =>
    app.inject({ method, url, headers: bearer(t), ...(payload ? { payload } : {}) });
  /** Every entry, parsed, straight from the table (what the filters must agree with). */
  const all = () => auditEntries<Entry>(suite.db);
  const query = async (f: AuditFilter, after = 0, limit?: number): Promise<Entry[]> => {
    const out: Entry[] = [];
    for await (const e of queryDatabase(suite.db, f, after, limit))
      out.push(JSON.parse(e.text) as Entry);
    return out;
  };
  const seqs = (es: Entry[]) => es.map((e) => e.seq);
  const names = (e: Entry, field: "key" | "artifact") => {
    const r = e.resource ?? {};
    const list = [
      r[field],
      (r.from as Record<string, unknown> | undefined)?.[field],
      (r.to as Record<string, unknown> | undefined)?.[field],
      ...((r[`${field}s`] as unknown[] | undefined) ?? []),
      ...((r.items as Record<string, unknown>[] | undefined) ?? []).map((i) => i[field]),
    ];
    return list.includes(field === "key" ? "alpha" : "model-a");
  };

  before(async () => {
    if (suite.skip) return;
    app = await server(suite.db, { sweepEveryMs: 0 });
    admin = await token(suite.db, "admin");
    writer = await token(suite.db, "wrap");
    opener = await token(suite.db, "unwrap");
    reader = await token(suite.db, "reader");
    auditor = await token(suite.db, "audit");
    for (const name of ["alpha", "beta"])
      assert.equal((await call("POST", "/v1/keys", admin, { name })).statusCode, 200);
    const wrapped = await call("POST", "/v1/datakeys/wrap", writer, { key: "alpha", fileKey: FK });
    assert.equal(wrapped.statusCode, 200, wrapped.body);
    const stanza = wrapped.json().stanza;
    const reg = await call("POST", "/v1/artifacts", writer, {
      id: "model-a",
      digest: digest("weights"),
      key: "alpha",
      version: 1,
      stanzaDigest: serviceStanzaDigest(stanzaFromWire(stanza)),
    });
    assert.equal(reg.statusCode, 200, reg.body);
    middle = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5)); // entries after `middle` have a later ts
    const opened = await call("POST", "/v1/datakeys/unwrap", opener, { stanza });
    assert.equal(opened.statusCode, 200, opened.body);
    const batch = await call("POST", "/v1/datakeys/unwrap-batch", opener, { stanzas: [stanza] });
    assert.equal(batch.statusCode, 200, batch.body);
    // Refused: a reader may not unwrap (the entry must still name the key and artifact).
    assert.equal((await call("POST", "/v1/datakeys/unwrap", reader, { stanza })).statusCode, 403);
    assert.equal((await call("POST", "/v1/keys/beta/rotate", admin)).statusCode, 200);
    const me = await suite.db.db
      .selectFrom("audit")
      .select("principal")
      .where("action", "=", "datakeys.unwrap")
      .where("outcome", "=", "allowed")
      .executeTakeFirstOrThrow();
    openerId = me.principal!;
  });
  after(async () => {
    if (suite.skip) return;
    await app.close();
  });

  test("each filter returns exactly the entries that match it, in order", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const entries = await all();
    const cases: [AuditFilter, (e: Entry) => boolean][] = [
      [{ key: "alpha" }, (e) => names(e, "key")],
      [{ artifact: "model-a" }, (e) => names(e, "artifact")],
      [{ principal: openerId }, (e) => e.principal === openerId],
      [{ action: "datakeys.unwrap" }, (e) => e.action === "datakeys.unwrap"],
      [{ outcome: "denied" }, (e) => e.outcome === "denied"],
      [{ from: middle }, (e) => String(e.ts) >= middle],
      [{ until: middle }, (e) => String(e.ts) < middle],
      [
        { artifact: "model-a", outcome: "allowed", principal: openerId },
        (e) => names(e, "artifact") && e.outcome === "allowed" && e.principal === openerId,
      ],
    ];
    for (const [f, want] of cases) {
      const expected = seqs(entries.filter(want));
      assert.ok(expected.length > 0, `the fixture has entries for ${JSON.stringify(f)}`);
      assert.deepEqual(seqs(await query(f)), expected, JSON.stringify(f));
    }
    assert.deepEqual(await query({ key: "no-such-key" }), []);
  });

  test("unwraps of a registered stanza name the artifact; a refusal names what it was about", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const releases = await query({ artifact: "model-a", outcome: "allowed" });
    assert.deepEqual(
      releases.map((e) => e.action),
      ["artifacts.register", "datakeys.unwrap", "datakeys.unwrap-batch"],
    );
    const [refused] = await query({ artifact: "model-a", outcome: "denied" });
    assert.equal(refused?.action, "datakeys.unwrap");
    assert.deepEqual(refused?.resource, { keys: ["alpha"], artifacts: ["model-a"] });
    assert.ok(!JSON.stringify(await all()).includes(FK), "no file key in the audit");
  });

  test("paging: after and limit walk the matches without gaps or repeats", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const every = seqs(await query({ key: "alpha" }));
    const walked: number[] = [];
    for (let after = 0; ; ) {
      const page = seqs(await query({ key: "alpha" }, after, 2));
      if (page.length === 0) break;
      assert.ok(page.length <= 2);
      walked.push(...page);
      after = page.at(-1)!;
    }
    assert.deepEqual(walked, every);
  });

  test("the API filters the same way, audits who asked, and refuses bad filters (400)", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const r = await call("GET", "/v1/audit?artifact=model-a&outcome=allowed&limit=1000", auditor);
    assert.equal(r.statusCode, 200, r.body);
    const got = (r.json() as { entries: Entry[] }).entries;
    assert.deepEqual(seqs(got), seqs(await query({ artifact: "model-a", outcome: "allowed" })));
    const asked = (await all()).at(-1)!;
    assert.equal(asked.action, "audit.read");
    assert.deepEqual(asked.resource?.filter, { artifact: "model-a", outcome: "allowed" });
    for (const q of [
      "key=bad%20name",
      "outcome=maybe",
      "from=yesterday",
      "until=2026-13-45",
      "from=0000-00-00",
      "action=DROP%20TABLE",
      "artifact=",
    ])
      assert.equal((await call("GET", `/v1/audit?${q}`, auditor)).statusCode, 400, q);
    // The pattern admits it, the calendar does not: 422, never a rolled-over date.
    assert.equal((await call("GET", "/v1/audit?from=2026-02-31", auditor)).statusCode, 422);
    assert.equal((await call("GET", "/v1/audit?key=alpha", reader)).statusCode, 403);
  });

  test("entries written before the index existed are indexed by the migration", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const before = seqs(await query({ key: "alpha" }));
    // As a database from before migration 0008 looks: entries without index fields or refs.
    await suite.db.db.deleteFrom("audit_refs").execute();
    await suite.db.db
      .updateTable("audit")
      .set({ ts: null, action: null, outcome: null, principal: null })
      .execute();
    assert.deepEqual(await query({ key: "alpha" }), []);
    await backfillAuditIndex(suite.db.db, 3);
    assert.deepEqual(seqs(await query({ key: "alpha" })), before);
  });
});

describe("audit query from the CLI", () => {
  test("--db and --server list the same entries; text, --json and usage errors", async () => {
    const sb = sandbox();
    const svc = await cliService(sb);
    try {
      const admin = await token(svc.db, "admin");
      const auditor = await token(svc.db, "audit");
      for (const name of ["alpha", "beta"])
        await svc.app.inject({
          method: "POST",
          url: "/v1/keys",
          headers: bearer(admin),
          payload: { name },
        });
      const dbUrl = svc.dbUrl;
      const viaDb = sb.run(["audit", "query", "--key", "alpha", "--json", "--db", dbUrl]);
      assert.equal(viaDb.status, 0, viaDb.stderr);
      const lines = viaDb.stdout.toString().trim().split("\n");
      assert.equal(lines.length, 1);
      const e = JSON.parse(lines[0]!) as Entry & { hash: string };
      assert.equal(e.action, "keys.create");
      assert.equal(e.resource?.key, "alpha");
      // Async: the server answers from this process, which spawnSync would block.
      const viaApi = await sb.runAsync(["audit", "query", "--key", "alpha", "--json"], {
        ...svc.env,
        TENSORSEAL_SERVER_TOKEN: auditor,
      });
      assert.equal(viaApi.status, 0, viaApi.stderr);
      assert.deepEqual(viaApi.stdout.trim().split("\n"), lines);
      const text = sb.run(["audit", "query", "--action", "keys.create", "--db", dbUrl]);
      assert.equal(text.status, 0, text.stderr);
      assert.equal(text.stdout.toString().trim().split("\n").length, 2);
      assert.match(text.stdout.toString(), /keys\.create .*"key":"beta"/);
      assert.match(text.stderr, /2 matching entries/);
      for (const bad of [
        ["--outcome", "maybe"],
        ["--since", "yesterday"],
        ["--limit", "0"],
        ["--after", "-1"],
      ]) {
        const r = sb.run(["audit", "query", ...bad, "--db", dbUrl]);
        assert.equal(r.status, 2, `${bad.join(" ")}: ${r.stderr}`);
      }
    } finally {
      await svc.close();
      sb.cleanup();
    }
  });
});
