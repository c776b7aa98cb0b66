/**
 * Time-based checkpoints and external anchoring (SQLite and PostgreSQL): a checkpoint appears
 * after T seconds without reaching N entries (fake clock and timer), none when nothing was
 * appended; replicas signing on time never duplicate one; `verify --anchor` detects what the
 * database alone cannot (tail and checkpoints deleted together, a rewritten chain with its
 * checkpoints removed) and forged anchor lines; anchoring never blocks key release.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import type { Database, ServerOptions } from "../../src/service/index.js";
import { parseAnchorLine, verifyAuditLog } from "../../src/service/index.js";
import {
  bearer,
  describeEachFreshDb,
  pgDb,
  server,
  sqliteDb,
  type TestDb,
  token,
} from "./helpers.js";
import { chainRewrite } from "./tamper.js";

const T = 10; // seconds

/** A server with a fake clock and a hand-driven checkpoint timer, anchoring to a file. */
async function fixture(db: Database, dir: string, opts: Partial<ServerOptions> = {}) {
  const clock = { now: Date.now() };
  let tick: (() => Promise<void>) | null = null;
  const anchor = join(dir, `anchor-${randomBytes(4).toString("hex")}.jsonl`);
  const app = await server(db, {
    checkpointEvery: 64,
    checkpointIntervalS: T,
    now: () => clock.now,
    sweepEveryMs: 0,
    checkpointSchedule: (fn) => {
      tick = fn;
      return () => {};
    },
    checkpointAnchor: { file: anchor },
    ...opts,
  });
  const tok = await token(db, "admin,wrap,unwrap");
  return {
    app,
    clock,
    anchor,
    /** One timer tick, then wait for the anchors. */
    async tick() {
      assert.ok(tick, "the server scheduled its checkpoint timer");
      await tick();
      await app.tensorseal.anchored();
    },
    /** One audited request (one entry). */
    async request(a: FastifyInstance = app) {
      const r = await a.inject({
        method: "POST",
        url: "/v1/keys",
        headers: bearer(tok),
        payload: { name: `k${randomBytes(6).toString("hex")}` },
      });
      assert.equal(r.statusCode, 200, r.body);
    },
  };
}

async function checkpointSeqs(db: Database): Promise<number[]> {
  const rows = await db.db.selectFrom("checkpoints").select("seq").orderBy("seq").execute();
  return rows.map((r) => Number(r.seq));
}

/** The seqs anchored in `file`; none when the file was never created (a replica that signed none). */
function anchoredSeqs(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => parseAnchorLine(l).seq);
}

const dir = mkdtempSync(join(tmpdir(), "tensorseal-anchor-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describeEachFreshDb("time-based checkpoints and anchoring", (make, skip) => {
  /** A fresh database and fixture, dropped afterwards. */
  async function withFixture(
    body: (f: Awaited<ReturnType<typeof fixture>>, db: Database) => Promise<void>,
    opts: Partial<ServerOptions> = {},
  ): Promise<void> {
    const t = (await make()) as TestDb;
    const db = await t.open();
    const f = await fixture(db, dir, opts);
    try {
      await body(f, db);
    } finally {
      await f.app.close();
      await db.close();
      await t.drop();
    }
  }

  /** Six entries with time-based checkpoints at 2, 4 and 6, all anchored. */
  async function sixEntries(f: Awaited<ReturnType<typeof fixture>>): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await f.request();
      await f.request();
      await f.tick();
      f.clock.now += T * 1000;
    }
  }

  test("a checkpoint appears after T without reaching N; none when nothing was appended", {
    skip,
  }, async () => {
    await withFixture(async (f, db) => {
      await f.tick();
      assert.deepEqual(await checkpointSeqs(db), [], "an empty log gets no checkpoint");
      await f.request();
      await f.tick();
      assert.deepEqual(await checkpointSeqs(db), [1], "the first entry is signed at once");
      f.clock.now += 3 * T * 1000;
      await f.tick();
      assert.deepEqual(await checkpointSeqs(db), [1], "nothing appended: no new checkpoint");
      await f.request();
      await f.request();
      await f.tick();
      assert.deepEqual(await checkpointSeqs(db), [1, 3], "T passed: the head (3) is signed");
      await f.request();
      f.clock.now += (T - 1) * 1000;
      await f.tick();
      assert.deepEqual(await checkpointSeqs(db), [1, 3], "within T of the last: none");
      f.clock.now += 1000;
      await f.tick();
      assert.deepEqual(await checkpointSeqs(db), [1, 3, 4], "checkpoints at any seq, not N");
      assert.deepEqual(anchoredSeqs(f.anchor), [1, 3, 4], "every checkpoint anchored in order");
      const v = await verifyAuditLog(db, {
        publicKey: f.app.tensorseal.auditPublicKey,
        anchor: f.anchor,
      });
      assert.deepEqual(v.problems, []);
      assert.equal(v.checkpoints, 3);
      assert.deepEqual(v.anchor, { lines: 3, newestSeq: 4 });
      const m = (await f.app.inject({ method: "GET", url: "/metrics" })).body;
      assert.match(m, /tensorseal_audit_checkpoints_total 3/);
      assert.match(m, /tensorseal_audit_anchored_total\{target="file"\} 3/);
    });
  });

  test("detects: tail deleted together with the checkpoints above it (rollback)", {
    skip,
  }, async () => {
    await withFixture(async (f, db) => {
      await sixEntries(f);
      const key = f.app.tensorseal.auditPublicKey;
      await db.db.deleteFrom("audit").where("seq", ">", 3).execute();
      await db.db.deleteFrom("checkpoints").where("seq", ">", 3).execute();
      const plain = await verifyAuditLog(db, { publicKey: key });
      assert.equal(plain.ok, true, "the database alone cannot reveal this rollback");
      assert.equal(plain.lastSeq, 3);
      const v = await verifyAuditLog(db, { publicKey: key, anchor: f.anchor });
      assert.equal(v.ok, false);
      assert.ok(
        v.problems.some((p) =>
          /rollback: the log ends at entry 3 but anchored checkpoint 4 \(anchor line 2\) was signed/.test(
            p,
          ),
        ),
        v.problems.join("; "),
      );
      assert.ok(v.problems.some((p) => /anchored checkpoint 6 /.test(p)));
    });
  });

  test("detects: an entry under an anchored checkpoint edited, chain and checkpoints redone", {
    skip,
  }, async () => {
    await withFixture(async (f, db) => {
      await sixEntries(f);
      const key = f.app.tensorseal.auditPublicKey;
      await chainRewrite(db, 2, (o) => ({ ...o, outcome: "denied" }));
      await db.db.deleteFrom("checkpoints").execute();
      const plain = await verifyAuditLog(db, { publicKey: key });
      assert.equal(plain.ok, true, "a consistent rewrite without checkpoints passes plain verify");
      const v = await verifyAuditLog(db, { publicKey: key, anchor: f.anchor });
      assert.equal(v.ok, false);
      assert.ok(
        v.problems.some((p) =>
          /entry 2 differs from anchored checkpoint 2 \(anchor line 1\)/.test(p),
        ),
        v.problems.join("; "),
      );
      assert.ok(v.problems.some((p) => /checkpoint 2 .* is missing from the database/.test(p)));
    });
  });

  test("detects: forged and malformed anchor lines", { skip }, async () => {
    await withFixture(async (f, db) => {
      await sixEntries(f);
      const key = f.app.tensorseal.auditPublicKey;
      const real = parseAnchorLine(readFileSync(f.anchor, "utf8").split("\n")[0]!);
      const forged = {
        ...real,
        seq: 9,
        hash: "ab".repeat(32),
        signature: randomBytes(64).toString("base64"),
      };
      appendFileSync(f.anchor, `${JSON.stringify(forged)}\nnot json\n`);
      const v = await verifyAuditLog(db, { publicKey: key, anchor: f.anchor });
      assert.equal(v.ok, false);
      assert.ok(
        v.problems.some((p) =>
          /anchored checkpoint 9 \(anchor line 4\) has a bad signature/.test(p),
        ),
        v.problems.join("; "),
      );
      assert.ok(v.problems.some((p) => /anchor line 5: not a checkpoint line/.test(p)));
      // Signed under the pinned key or not at all: the key in the database is not enough.
      const other = await verifyAuditLog(db, {
        publicKey: randomBytes(32).toString("base64"),
        anchor: f.anchor,
      });
      assert.ok(other.problems.some((p) => /anchored checkpoint 2 .* bad signature/.test(p)));
    });
  });

  test("anchor URL receives every checkpoint (loopback HTTP, retried after a 503)", {
    skip,
  }, async () => {
    const bodies: string[] = [];
    let calls = 0;
    const http = createServer((req, res) => {
      let b = "";
      req.on("data", (d) => {
        b += d;
      });
      req.on("end", () => {
        calls++;
        if (calls === 1) {
          res.writeHead(503).end();
          return;
        }
        bodies.push(b);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/anchor`;
    const file = join(dir, `both-${randomBytes(4).toString("hex")}.jsonl`);
    try {
      await withFixture(
        async (f, db) => {
          await f.request();
          await f.tick();
          await f.request();
          f.clock.now += T * 1000;
          await f.tick();
          assert.equal(calls, 3, "one refused attempt, then two deliveries");
          assert.deepEqual(
            bodies.map((b) => parseAnchorLine(b).seq),
            [1, 2],
          );
          assert.deepEqual(bodies, readFileSync(file, "utf8").split("\n").filter(Boolean));
          const fromUrl = join(dir, `from-url-${randomBytes(4).toString("hex")}.jsonl`);
          writeFileSync(fromUrl, `${bodies.join("\n")}\n`);
          const v = await verifyAuditLog(db, {
            publicKey: f.app.tensorseal.auditPublicKey,
            anchor: fromUrl,
          });
          assert.deepEqual(v.problems, []);
          const m = (await f.app.inject({ method: "GET", url: "/metrics" })).body;
          assert.match(m, /tensorseal_audit_anchored_total\{target="url"\} 2/);
        },
        {
          checkpointAnchor: {
            file,
            url,
            retryDelayMs: 10,
          },
        },
      );
    } finally {
      await new Promise<void>((r) => http.close(() => r()));
    }
  });

  test("an unwritable anchor path does not stop key release; it is logged and counted", {
    skip,
  }, async () => {
    const notADir = join(dir, `file-${randomBytes(4).toString("hex")}`);
    writeFileSync(notADir, "");
    let logged = "";
    const stream = new Writable({
      write(chunk, _enc, cb) {
        logged += chunk.toString();
        cb();
      },
    });
    await withFixture(
      async (f, db) => {
        const tok = await token(db, "admin,wrap,unwrap");
        await f.request(); // entry 1; key m is entry 2, the generates 3 and 4 (N = 4)
        const k = await f.app.inject({
          method: "POST",
          url: "/v1/keys",
          headers: bearer(tok),
          payload: { name: "m" },
        });
        assert.equal(k.statusCode, 200);
        for (let i = 0; i < 2; i++) {
          const g = await f.app.inject({
            method: "POST",
            url: "/v1/datakeys/generate",
            headers: bearer(tok),
            payload: { key: "m" },
          });
          assert.equal(g.statusCode, 200, "the key is released although anchoring fails");
          assert.ok(g.json().fileKey);
        }
        await f.app.tensorseal.anchored();
        assert.deepEqual(await checkpointSeqs(db), [4], "the checkpoint stands in the database");
        const m = (await f.app.inject({ method: "GET", url: "/metrics" })).body;
        assert.match(m, /tensorseal_audit_anchor_failures_total\{target="file"\} 1/);
        assert.match(logged, /checkpoint anchoring failed/);
        assert.match(logged, /ENOTDIR/);
        assert.equal((await verifyAuditLog(db)).ok, true);
      },
      {
        checkpointEvery: 4,
        checkpointAnchor: { file: join(notADir, "anchor.jsonl") },
        logger: { level: "error", stream },
      },
    );
  });
});

describe("two replicas on one PostgreSQL signing on time", async () => {
  const t = await pgDb();
  test("no duplicate or conflicting checkpoint; anchors and chain verify", {
    skip: typeof t === "string" ? t : false,
  }, async () => {
    if (typeof t === "string") return;
    const dbA = await t.open();
    const dbB = await t.open();
    const a = await fixture(dbA, dir);
    const b = await fixture(dbB, dir);
    b.clock.now = a.clock.now;
    try {
      for (let round = 0; round < 5; round++) {
        const before = (await checkpointSeqs(dbA)).length;
        // Appends through both replicas while both timers fire, same instant on both.
        await Promise.all([
          ...Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).request()),
          a.tick(),
          b.tick(),
        ]);
        await Promise.all([a.tick(), b.tick()]);
        const seqs = await checkpointSeqs(dbA);
        assert.equal(seqs.length - before, 1, `round ${round}: exactly one checkpoint signed`);
        a.clock.now += T * 1000;
        b.clock.now = a.clock.now;
      }
      const stored = await checkpointSeqs(dbA);
      const anchored = [...anchoredSeqs(a.anchor), ...anchoredSeqs(b.anchor)].sort((x, y) => x - y);
      assert.deepEqual(
        anchored,
        stored,
        "each checkpoint anchored once, by the replica that signed",
      );
      const both = join(dir, `replicas-${randomBytes(4).toString("hex")}.jsonl`);
      // A replica that lost all five races signed nothing, so it has no anchor file.
      const lines = (f: string) => (existsSync(f) ? readFileSync(f, "utf8") : "");
      writeFileSync(both, lines(a.anchor) + lines(b.anchor));
      const v = await verifyAuditLog(dbA, {
        publicKey: a.app.tensorseal.auditPublicKey,
        anchor: both,
      });
      assert.deepEqual(v.problems, []);
      assert.equal(v.entries, 30, "every request once, none lost or duplicated");
    } finally {
      await a.app.close();
      await b.app.close();
      await dbA.close();
      await dbB.close();
      await t.drop();
    }
  });
});

test("CLI: audit checkpoint prints an anchor line; verify --anchor exits 5 on a rollback", async () => {
  const { sandbox } = await import("../cli/helpers.js");
  const sb = sandbox();
  const t = sqliteDb();
  const db = await t.open();
  try {
    const f = await fixture(db, dir);
    const none = await sb.runAsync(["audit", "checkpoint", "--db", t.url]);
    assert.equal(none.status, 2, none.stderr);
    assert.match(none.stderr, /no signed checkpoint/);
    await f.request();
    await f.request();
    await f.tick();
    const key = f.app.tensorseal.auditPublicKey;
    const head = await sb.runAsync(["audit", "checkpoint", "--db", t.url, "--public-key", key]);
    assert.equal(head.status, 0, head.stderr);
    assert.equal(head.stdout, readFileSync(f.anchor, "utf8"), "the same line serve anchored");
    const cron = join(dir, `cron-${randomBytes(4).toString("hex")}.jsonl`);
    writeFileSync(cron, head.stdout);
    const verifyAnchored = () =>
      sb.runAsync(["audit", "verify", "--db", t.url, "--public-key", key, "--anchor", cron]);
    const ok = await verifyAnchored();
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(
      ok.stderr,
      /verified: 2 entries, 1 checkpoints, 1 anchored checkpoints \(newest 2\)/,
    );
    await f.app.close();
    await db.db.deleteFrom("audit").where("seq", ">", 1).execute();
    await db.db.deleteFrom("checkpoints").execute();
    const bad = await verifyAnchored();
    assert.equal(bad.status, 5, bad.stderr);
    assert.match(
      bad.stderr,
      /rollback: the log ends at entry 1 but anchored checkpoint 2 \(anchor line 1\)/,
    );
    const missing = await sb.runAsync([
      "audit",
      "verify",
      "--db",
      t.url,
      "--anchor",
      join(dir, "nope"),
    ]);
    assert.equal(missing.status, 7, missing.stderr);
    assert.match(missing.stderr, /cannot read the anchor file/);
  } finally {
    await db.close();
    await t.drop();
    sb.cleanup();
  }
});
