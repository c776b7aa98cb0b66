/**
 * `audit verify` over the query API (SQLite and PostgreSQL, injected; the CLI over TLS with the
 * dev CA): an untouched log verifies with the database verify's counts, and every tampering
 * the database verify detects is detected remotely too, under the pinned key only.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type { FastifyInstance } from "fastify";
import {
  apiSource,
  ensureDevTls,
  type JsonClient,
  type VerifyResult,
  verifyAuditLog,
  verifyAuditSource,
} from "../../src/service/index.js";
import { sandbox } from "../cli/helpers.js";
import { bearer, describeEachFreshDb, server, sqliteDb, type TestDb, token } from "./helpers.js";
import { chainRewrite } from "./tamper.js";

const dir = mkdtempSync(join(tmpdir(), "tensorseal-remote-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The API client over app.inject; a refusal throws like ServiceClient's (status in the message). */
function injected(app: FastifyInstance, tok: string): JsonClient {
  return {
    async get(path) {
      const r = await app.inject({ method: "GET", url: path, headers: bearer(tok) });
      return { status: r.statusCode, body: r.json() };
    },
    refused(path, r) {
      throw new Error(`refused ${path}: ${r.status}`);
    },
  };
}

/** A server (checkpoint every 4, anchored to a file) with a dozen entries. */
async function fixture(t: TestDb, tls?: Awaited<ReturnType<typeof ensureDevTls>>) {
  const db = await t.open();
  const anchor = join(dir, `anchor-${randomBytes(4).toString("hex")}.jsonl`);
  const app = await server(db, {
    sweepEveryMs: 0,
    checkpointAnchor: { file: anchor },
    ...(tls ? { tls } : {}),
  });
  const admin = await token(db, "admin");
  const auditor = await token(db, "audit");
  for (const name of ["a", "b", "c"])
    await app.inject({
      method: "POST",
      url: "/v1/keys",
      headers: bearer(admin),
      payload: { name },
    });
  for (let i = 0; i < 9; i++)
    await app.inject({ method: "GET", url: "/v1/keys", headers: bearer(admin) });
  const key = app.tensorseal.auditPublicKey;
  return {
    db,
    app,
    admin,
    auditor,
    key,
    anchor,
    remote: (opts: { publicKey?: string; anchor?: string } = {}, page?: number) =>
      verifyAuditSource(apiSource(injected(app, auditor), page), opts),
    /** Makes sure the reads of one remote verify sign no checkpoint, so counts compare exactly. */
    async align(): Promise<VerifyResult> {
      for (;;) {
        const v = await verifyAuditLog(db, { publicKey: key });
        if ((v.lastSeq + 1) % 4 !== 0) return v;
        await app.inject({ method: "GET", url: "/v1/keys", headers: bearer(admin) });
      }
    },
    async close() {
      await app.close();
      await db.close();
      await t.drop();
    },
  };
}

const has = (v: VerifyResult, re: RegExp) =>
  assert.ok(
    v.problems.some((p) => re.test(p)),
    `${re}: ${v.problems.join("; ")}`,
  );

describeEachFreshDb("remote audit verify", (make, skip) => {
  async function withFixture(body: (f: Awaited<ReturnType<typeof fixture>>) => Promise<void>) {
    const f = await fixture((await make()) as TestDb);
    try {
      await body(f);
    } finally {
      await f.close();
    }
  }

  test("an untouched log verifies with the database verify's counts; small pages too", {
    skip,
  }, async () => {
    await withFixture(async (f) => {
      const local = await f.align();
      assert.ok(local.ok, local.problems.join("; "));
      const r = await f.remote({ publicKey: f.key });
      assert.deepEqual(r.problems, []);
      for (const k of ["ok", "entries", "checkpoints", "lastSeq", "lastHash", "pinned"] as const)
        assert.deepEqual(r[k], local[k], k);
      // Pages of 3: the log grows by one entry per page read, verified up to the head reached.
      const small = await f.remote({ publicKey: f.key }, 3);
      assert.deepEqual(small.problems, []);
      assert.ok(small.lastSeq > local.lastSeq);
      const after = await verifyAuditLog(f.db, { publicKey: f.key });
      assert.ok(after.ok && after.lastSeq > small.lastSeq);
      const row = await f.db.db
        .selectFrom("audit")
        .select("hash")
        .where("seq", "=", small.lastSeq)
        .executeTakeFirstOrThrow();
      assert.equal(row.hash, small.lastHash);
      assert.equal(small.checkpoints, Math.floor(small.lastSeq / 4));
    });
  });

  test("checkpoint paging with before; canonical text on request; old callers unchanged", {
    skip,
  }, async () => {
    await withFixture(async (f) => {
      const get = async (url: string) => {
        const r = await f.app.inject({ method: "GET", url, headers: bearer(f.auditor) });
        assert.equal(r.statusCode, 200, r.body);
        return r.json();
      };
      const first = await get("/v1/audit/checkpoints?limit=2");
      assert.equal(first.more, true);
      assert.equal(first.every, 4);
      const second = await get(`/v1/audit/checkpoints?limit=2&before=${first.nextBefore}`);
      const seqs = [...first.checkpoints, ...second.checkpoints].map((c: { seq: number }) => c.seq);
      assert.deepEqual(
        seqs,
        [...new Set(seqs)].sort((a, b) => b - a),
      );
      assert.ok(seqs.every((s) => s % 4 === 0));
      const plain = await get("/v1/audit?limit=2");
      assert.equal(plain.entries[0].canonical, undefined);
      const withText = await get("/v1/audit?limit=2&canonical=true");
      const row = await f.db.db
        .selectFrom("audit")
        .select("entry")
        .where("seq", "=", 1)
        .executeTakeFirstOrThrow();
      assert.equal(withText.entries[0].canonical, row.entry);
      const bad = await f.app.inject({
        method: "GET",
        url: "/v1/audit/checkpoints?before=0",
        headers: bearer(f.auditor),
      });
      assert.equal(bad.statusCode, 400);
    });
  });

  test("detects an edited entry and a deleted entry", { skip }, async () => {
    await withFixture(async (f) => {
      const row = await f.db.db
        .selectFrom("audit")
        .select("entry")
        .where("seq", "=", 2)
        .executeTakeFirstOrThrow();
      const edited = row.entry.replace('"outcome":"allowed"', '"outcome":"denied"');
      assert.notEqual(edited, row.entry);
      await f.db.db.updateTable("audit").set({ entry: edited }).where("seq", "=", 2).execute();
      const r1 = await f.remote({ publicKey: f.key });
      assert.equal(r1.ok, false);
      has(r1, /entry 2 does not match its hash \(edited\)/);
      await f.db.db.deleteFrom("audit").where("seq", "=", 6).execute();
      const r2 = await f.remote({ publicKey: f.key });
      has(r2, /entries 6\.\.6 are missing \(deleted\)/);
      has(r2, /entry 7 does not link to entry 6/);
    });
  });

  test("detects a chain rewritten consistently and a forged checkpoint signature", {
    skip,
  }, async () => {
    await withFixture(async (f) => {
      await chainRewrite(f.db, 5, (o) => ({ ...o, principal: "someone-else" }));
      const r1 = await f.remote({ publicKey: f.key });
      has(r1, /entry 8 differs from its signed checkpoint \(history rewritten\)/);
      assert.ok(!r1.problems.some((p) => /does not match its hash/.test(p)));
    });
    await withFixture(async (f) => {
      const other = await f.db.db
        .selectFrom("checkpoints")
        .select("signature")
        .where("seq", "=", 8)
        .executeTakeFirstOrThrow();
      await f.db.db
        .updateTable("checkpoints")
        .set({ signature: other.signature })
        .where("seq", "=", 4)
        .execute();
      const r = await f.remote({ publicKey: f.key });
      has(r, /checkpoint 4 has a bad signature/);
    });
  });

  test("with --anchor: detects the tail deleted together with its checkpoints", {
    skip,
  }, async () => {
    await withFixture(async (f) => {
      await f.app.tensorseal.anchored();
      await f.db.db.deleteFrom("audit").where("seq", ">", 5).execute();
      await f.db.db.deleteFrom("checkpoints").where("seq", ">", 5).execute();
      const r = await f.remote({ publicKey: f.key, anchor: f.anchor });
      assert.equal(r.ok, false);
      // The reads appended new entries at 6, 7, …: anchored 8 names another entry, or none.
      has(r, /anchored checkpoint 8 \(anchor line 2\)/);
    });
  });

  test("the wrong pinned key fails; an unpinned verify says so; no audit scope is refused", {
    skip,
  }, async () => {
    await withFixture(async (f) => {
      const wrong = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }).x!;
      const r = await f.remote({ publicKey: Buffer.from(wrong, "base64url").toString("base64") });
      assert.equal(r.ok, false);
      has(r, /checkpoint 4 has a bad signature/);
      const unpinned = await f.remote();
      assert.equal(unpinned.ok, true);
      assert.equal(unpinned.pinned, false);
      const reader = await token(f.db, "reader");
      await assert.rejects(
        verifyAuditSource(apiSource(injected(f.app, reader))),
        /refused \/v1\/audit: 403/,
      );
    });
  });
});

test("CLI: audit verify --server over TLS (dev CA): counts, tamper exit 5, refusal exit 8", async () => {
  const sb = sandbox();
  const t = sqliteDb();
  const dev = await ensureDevTls(join(sb.dir, "srv"));
  const f = await fixture(t, dev);
  try {
    const url = await f.app.listen({ host: "127.0.0.1", port: 0 });
    const env = {
      TENSORSEAL_SERVER_TOKEN: f.auditor,
      TENSORSEAL_SERVER_CA: dev.caPath,
    };
    const run = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
      sb.runAsync(["audit", "verify", ...args], { ...env, ...extra });

    const local = await f.align();
    const ok = await run(["--server", url, "--public-key", f.key, "--json"]);
    assert.equal(ok.status, 0, ok.stderr);
    const j = JSON.parse(ok.stdout);
    assert.equal(j.ok, true);
    assert.equal(j.server, url);
    for (const k of ["entries", "checkpoints", "lastSeq", "lastHash"] as const)
      assert.equal(j[k], local[k], k);
    assert.ok(!ok.stderr.includes(f.auditor), "no token in the output");

    // TENSORSEAL_SERVER alone selects the API; unpinned, it warns loudly.
    const unpinned = await run([], { TENSORSEAL_SERVER: url });
    assert.equal(unpinned.status, 0, unpinned.stderr);
    assert.match(unpinned.stderr, /WARNING: no --public-key/);
    assert.match(unpinned.stderr, /audit log at https:\/\/127\.0\.0\.1:\d+ verified: \d+ entries/);

    const reader = await run(["--server", url, "--public-key", f.key], {
      TENSORSEAL_SERVER_TOKEN: await token(f.db, "reader"),
    });
    assert.equal(reader.status, 8, reader.stderr);
    assert.match(reader.stderr, /\/v1\/audit/);
    const both = await run(["--server", url, "--db", t.url]);
    assert.equal(both.status, 2, both.stderr);

    const wrongKey = Buffer.from(
      generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }).x!,
      "base64url",
    ).toString("base64");
    const wrong = await run(["--server", url, "--public-key", wrongKey]);
    assert.equal(wrong.status, 5, wrong.stderr);
    assert.match(wrong.stderr, /checkpoint 4 has a bad signature/);

    await f.db.db.deleteFrom("audit").where("seq", "=", 3).execute();
    const tampered = await run(["--server", url, "--public-key", f.key]);
    assert.equal(tampered.status, 5, tampered.stderr);
    assert.match(tampered.stderr, /entries 3\.\.3 are missing \(deleted\)/);
    assert.match(tampered.stderr, /FAILED verification/);
  } finally {
    await f.close();
    sb.cleanup();
  }
});
