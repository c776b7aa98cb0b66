/** Audit query API (SQLite and PostgreSQL): paging over every entry once in order, hashes recomputable, checkpoints verifiable with node:crypto, denials audited. */
import assert from "node:assert/strict";
import { createHash, createPublicKey, verify } from "node:crypto";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { verifyAuditLog } from "../../src/service/index.js";
import {
  type AuditEntryView,
  bearer,
  describeEachDb,
  lastAuditEntry,
  server,
  token,
} from "./helpers.js";

/** Canonical JSON written independently of the service's encoder (keys sorted, no whitespace). */
function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

describeEachDb("audit query API", (suite) => {
  let app: FastifyInstance;
  let admin: string;
  let auditor: string;
  let reader: string;

  const get = (url: string, t: string) => app.inject({ method: "GET", url, headers: bearer(t) });
  const lastEntry = () => lastAuditEntry<AuditEntryView>(suite.db);

  before(async () => {
    if (suite.skip) return;
    app = await server(suite.db, { sweepEveryMs: 0 }); // checkpoint every 4 entries
    admin = await token(suite.db, "admin");
    auditor = await token(suite.db, "audit");
    reader = await token(suite.db, "reader");
    for (const name of ["a", "b", "c"])
      assert.equal(
        (
          await app.inject({
            method: "POST",
            url: "/v1/keys",
            headers: bearer(admin),
            payload: { name },
          })
        ).statusCode,
        200,
      );
    for (let i = 0; i < 6; i++) await get("/v1/keys", admin);
    await get("/v1/keys", reader); // a denial in the log
  });
  after(async () => {
    if (suite.skip) return;
    await app.close();
  });

  test("paging returns every entry once, in order, with recomputable hashes", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const seen: Record<string, unknown>[] = [];
    let since = 0;
    for (let pages = 0; ; pages++) {
      assert.ok(pages < 100, "paging does not end");
      const r = await get(`/v1/audit?since=${since}&limit=3`, auditor);
      assert.equal(r.statusCode, 200, r.body);
      const b = r.json() as {
        entries: Record<string, unknown>[];
        nextSince: number;
        more: boolean;
      };
      assert.ok(b.entries.length <= 3);
      seen.push(...b.entries);
      if (b.entries.length > 0) assert.equal(b.nextSince, b.entries.at(-1)?.seq);
      else assert.equal(b.nextSince, since);
      since = b.nextSince;
      if (!b.more) break;
    }
    // Each read was audited, so the log grew while paging; everything up to the last page is here.
    assert.deepEqual(
      seen.map((e) => e.seq),
      seen.map((_, i) => i + 1),
    );
    const rows = await suite.db.db
      .selectFrom("audit")
      .selectAll()
      .where("seq", "<=", seen.length)
      .orderBy("seq")
      .execute();
    assert.equal(rows.length, seen.length);
    let prev = "0".repeat(64);
    for (const [i, e] of seen.entries()) {
      const { hash, ...fields } = e;
      const text = canon(fields);
      assert.equal(text, rows[i]?.entry, "the API returns the canonical fields the chain hashes");
      assert.equal(createHash("sha256").update(text).digest("hex"), hash);
      assert.equal(fields.prev, prev);
      prev = hash as string;
    }
    assert.ok(seen.some((e) => e.outcome === "denied"));
    for (const e of seen) {
      const s = JSON.stringify(e);
      for (const secret of [admin, auditor, reader]) assert.ok(!s.includes(secret));
    }
    const e = await lastEntry();
    assert.equal(e.action, "audit.read");
    assert.equal(e.outcome, "allowed");
    assert.equal(e.authz.decision, "allow");

    // The admin role reads too; bad queries are 400.
    assert.equal((await get("/v1/audit", admin)).statusCode, 200);
    for (const q of ["limit=0", "limit=1001", "since=-1", "since=x", "other=1"])
      assert.equal((await get(`/v1/audit?${q}`, auditor)).statusCode, 400, q);
    assert.equal((await get("/v1/audit/checkpoints?limit=1001", auditor)).statusCode, 400);
  });

  test("checkpoints verify with node:crypto Ed25519 against the returned public key", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const r = await get("/v1/audit/checkpoints?limit=5", auditor);
    assert.equal(r.statusCode, 200, r.body);
    const b = r.json() as {
      server: string;
      publicKey: string;
      checkpoints: { seq: number; hash: string; signature: string }[];
    };
    assert.equal(b.checkpoints.length, 5);
    const seqs = b.checkpoints.map((c) => c.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => y - x),
    );
    const key = createPublicKey({
      key: {
        kty: "OKP",
        crv: "Ed25519",
        x: Buffer.from(b.publicKey, "base64").toString("base64url"),
      },
      format: "jwk",
    });
    for (const c of b.checkpoints) {
      const msg = Buffer.from(
        `{"hash":"${c.hash}","seq":${c.seq},"server":"${b.server}","type":"tensorseal-audit-checkpoint"}`,
      );
      assert.ok(verify(null, msg, key, Buffer.from(c.signature, "base64")), `checkpoint ${c.seq}`);
      assert.equal(c.seq % 4, 0);
      const row = await suite.db.db
        .selectFrom("audit")
        .select("hash")
        .where("seq", "=", c.seq)
        .executeTakeFirstOrThrow();
      assert.equal(row.hash, c.hash);
      const forged = Buffer.from(msg.toString().replace(`"seq":${c.seq}`, `"seq":${c.seq + 1}`));
      assert.ok(!verify(null, forged, key, Buffer.from(c.signature, "base64")));
    }
    assert.equal((await lastEntry()).action, "audit.checkpoints");
  });

  test("a token without admin or audit is denied (403) and audited", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const wrapper = await token(suite.db, "wrap,unwrap");
    for (const [url, action] of [
      ["/v1/audit", "audit.read"],
      ["/v1/audit/checkpoints", "audit.checkpoints"],
    ] as const) {
      for (const tk of [reader, wrapper]) {
        const r = await get(url, tk);
        assert.equal(r.statusCode, 403, r.body);
        assert.equal(r.json().error, "forbidden");
        assert.equal(r.json().entries, undefined);
        const e = await lastEntry();
        assert.equal(e.action, action);
        assert.equal(e.outcome, "denied");
        assert.equal(e.status, 403);
        assert.equal(e.authz.decision, "deny");
      }
    }
    const anon = await app.inject({ method: "GET", url: "/v1/audit" });
    assert.equal(anon.statusCode, 401);
    assert.equal((await lastEntry()).outcome, "denied");
    const v = await verifyAuditLog(suite.db);
    assert.ok(v.ok, v.problems.join("; "));
  });
});
