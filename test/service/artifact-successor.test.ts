/**
 * Registrations carry the file's header, and a reseal's file is registered as its artifact's
 * successor (SQLite and PostgreSQL, `serve --tier-policy builtin`):
 * - a restricted key's artifact is refused without a header and with a header holding a
 *   recipient kind the tier does not allow (403 tier_violation, audited as a denial), accepted
 *   with allowed kinds; a header that is not this stanza's is refused;
 * - POST /v1/artifacts/successors registers the new file (key, version and stanza from its
 *   header; digest and labels inherited), marks the old artifact superseded (kept, not deleted),
 *   the inventory shows both and no longer counts the old one on its version, the audit entry is
 *   found by either artifact; a stanza never registered is 404, a header breaking the tier or a
 *   token without the wrap scope is refused with the old artifact unchanged; a second successor
 *   (a rerun after a crash before the rename) becomes the newest, the first keeps its lineage.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { sealFile } from "../../src/engine/index.js";
import { parseHeader } from "../../src/format/header.js";
import type { Recipient } from "../../src/format/stanza.js";
import { kekRecipient } from "../../src/keys/kek.js";
import {
  SERVICE_STANZA,
  serviceStanzaDigest,
  stanzaFromWire,
  stanzaToWire,
} from "../../src/keys/service/index.js";
import { headerBase64 } from "../../src/keys/service/registry.js";
import { BUILTIN_SERVICE_TIERS, TierPolicy } from "../../src/service/tiers.js";
import {
  type AuditEntryView,
  bearer,
  describeEachDb,
  lastAuditEntry,
  server,
  token,
} from "./helpers.js";

type Wire = { type: string; fields: string[] };
const DIGEST = `sha256:${"b".repeat(64)}`;

describeEachDb("registrations carry the header; reseals register successors", (suite) => {
  let app: FastifyInstance;
  let admin: string;
  let dir: string;
  let n = 0;

  const post = (url: string, payload: object, t = admin) =>
    app.inject({ method: "POST", url, headers: bearer(t), payload });
  const get = (url: string) => app.inject({ method: "GET", url, headers: bearer(admin) });
  const last = () => lastAuditEntry<AuditEntryView>(suite.db);

  /** A service recipient of this in-process service (POST /v1/datakeys/wrap). */
  const service = (key: string): Recipient => ({
    id: `service:${key}`,
    matches: () => false,
    wrap: async (fk) => {
      const r = await post("/v1/datakeys/wrap", {
        key,
        fileKey: Buffer.from(fk).toString("base64"),
      });
      assert.equal(r.statusCode, 200, r.body);
      return stanzaFromWire(r.json().stanza);
    },
  });
  const kek = () => kekRecipient({ name: "laptop", version: 1 }, randomBytes(32));

  /** Seals a small file to `recipients`; its header (base64) and its service stanza. */
  async function sealed(recipients: Recipient[], tier?: string) {
    const input = join(dir, `in${++n}`);
    writeFileSync(input, randomBytes(1000));
    const out = `${input}.tseal`;
    await sealFile(input, out, {
      recipients,
      ...(tier ? { labels: { "tensorseal:tier": tier } } : {}),
    });
    const header = await headerBase64(out);
    const s = parseHeader(Buffer.from(header, "base64")).stanzas.find(
      (x) => x.type === SERVICE_STANZA,
    )!;
    return { header, stanza: stanzaToWire(s) as Wire, digest: serviceStanzaDigest(s) };
  }

  const register = (key: string, f: { header?: string; digest: string }, extra = {}) =>
    post("/v1/artifacts", {
      digest: DIGEST,
      key,
      version: 1,
      labels: { team: "ml" },
      stanzaDigest: f.digest,
      location: "/models/m.tseal",
      ...(f.header !== undefined ? { header: f.header } : {}),
      ...extra,
    });

  before(async () => {
    if (suite.skip) return;
    dir = mkdtempSync(join(tmpdir(), "ts-succ-"));
    app = await server(suite.db, { sweepEveryMs: 0, tiers: new TierPolicy(BUILTIN_SERVICE_TIERS) });
    admin = await token(suite.db, "admin,wrap,unwrap");
    assert.equal((await post("/v1/keys", { name: "m" })).statusCode, 200);
    const c = await post("/v1/keys", { name: "crown", sensitivity: "restricted" });
    assert.equal(c.statusCode, 200, c.body);
  });
  after(async () => {
    if (suite.skip) return;
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a restricted tier's registration needs the header and allowed recipient kinds", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const mixed = await sealed([service("crown"), kek()]);
    for (const [f, re] of [
      [{ digest: mixed.digest }, /must carry the file's header/],
      [mixed, /tier restricted does not allow kek recipients/],
    ] as const) {
      const r = await register("crown", f);
      assert.equal(r.statusCode, 403, r.body);
      assert.equal(r.json().error, "tier_violation");
      assert.match(r.json().message, re);
      const e = await last();
      assert.equal(e.action, "artifacts.register");
      assert.equal(e.outcome, "denied");
    }
    // The tier a file records counts too: a restricted-tier file on an unrestricted key.
    const labelled = await sealed([service("m"), kek()], "restricted");
    const l = await register("m", labelled);
    assert.equal(l.statusCode, 403, l.body);
    assert.match(l.json().message, /tier restricted does not allow kek/);
    const listed = await get("/v1/artifacts?key=crown");
    assert.equal(listed.json().artifacts.length, 0, "nothing was registered");

    const clean = await sealed([service("crown")]);
    const ok = await register("crown", clean);
    assert.equal(ok.statusCode, 200, ok.body);
    const e = await last();
    assert.equal(e.outcome, "allowed");
    assert.deepEqual((e.resource as { recipientKinds: string[] }).recipientKinds, ["service"]);
    // A header that does not hold the stanza registered is not this file's.
    const other = await sealed([service("crown")]);
    const wrong = await register("crown", { header: other.header, digest: clean.digest });
    assert.equal(wrong.statusCode, 422, wrong.body);
    // Without a tier that restricts kinds, a header is optional.
    const plain = await sealed([service("m"), kek()]);
    assert.equal((await register("m", { digest: plain.digest })).statusCode, 200);
  });

  test("a reseal's file is registered as the successor; the old artifact is kept, superseded", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const v1 = await sealed([service("m")]);
    const old = (await register("m", v1)).json();
    assert.ok(old.id);
    const v2 = await sealed([service("m"), kek()]);

    // Refusals: nothing changes.
    const unknown = await sealed([service("m")]);
    const nf = await post("/v1/artifacts/successors", { from: unknown.stanza, header: v2.header });
    assert.equal(nf.statusCode, 404, nf.body);
    const noWrap = await post(
      "/v1/artifacts/successors",
      { from: v1.stanza, header: v2.header },
      await token(suite.db, "unwrap"),
    );
    assert.equal(noWrap.statusCode, 403, noWrap.body);
    assert.equal((await get(`/v1/artifacts/${old.id}`)).json().supersededBy, undefined);

    const r = await post("/v1/artifacts/successors", {
      from: v1.stanza,
      header: v2.header,
      location: "/models/m.tseal",
    });
    assert.equal(r.statusCode, 200, r.body);
    const next = r.json();
    assert.equal(next.supersedes, old.id);
    assert.equal(next.digest, old.digest, "the plaintext digest is inherited");
    assert.deepEqual(next.labels, { team: "ml" });
    assert.equal(next.key, "m");
    const h2 = Buffer.from(v2.header, "base64");
    const { createHash } = await import("node:crypto");
    assert.equal(
      next.headerDigest,
      `sha256:${createHash("sha256").update(h2).digest("hex")}`,
      "the new header's digest, as reseal reports it",
    );
    const e = await last();
    assert.equal(e.action, "artifacts.succeed");
    assert.equal(e.outcome, "allowed");
    assert.equal((e.resource as { supersedes: string }).supersedes, old.id);
    const was = (await get(`/v1/artifacts/${old.id}`)).json();
    assert.equal(was.supersededBy, next.id, "kept, marked superseded");
    assert.ok(was.superseded);

    // The inventory shows both, and counts only the current one on key m v1.
    const inv = (await get("/v1/inventory?key=m")).json();
    const row = (id: string) => inv.artifacts.find((a: { id: string }) => a.id === id);
    assert.equal(row(old.id).supersededBy, next.id);
    assert.equal(row(next.id).supersedes, old.id);
    const before = inv.artifacts.filter((a: { supersededBy?: string }) => !a.supersededBy).length;
    assert.equal(inv.keys[0].versions[0].artifacts, before);

    // The audit finds the succession by either artifact.
    for (const id of [old.id, next.id]) {
      const q = await app.inject({
        method: "GET",
        url: `/v1/audit?artifact=${id}&action=artifacts.succeed&outcome=allowed`,
        headers: bearer(await token(suite.db, "audit")),
      });
      assert.equal(q.statusCode, 200, q.body);
      assert.equal(q.json().entries.length, 1, `${id}: ${q.body}`);
    }

    // A rerun after a crash before the rename: the old stanza is still the registered one.
    const v3 = await sealed([service("m")]);
    const again = await post("/v1/artifacts/successors", { from: v1.stanza, header: v3.header });
    assert.equal(again.statusCode, 200, again.body);
    assert.equal((await get(`/v1/artifacts/${old.id}`)).json().supersededBy, again.json().id);
    assert.equal((await get(`/v1/artifacts/${next.id}`)).json().supersedes, old.id);
    // The new stanza is registered once.
    const dup = await post("/v1/artifacts/successors", { from: v1.stanza, header: v3.header });
    assert.equal(dup.statusCode, 409, dup.body);
  });

  test("a successor must meet the tier of its key", async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const v1 = await sealed([service("crown")]);
    const old = (await register("crown", v1)).json();
    assert.ok(old.id, JSON.stringify(old));
    const bad = await sealed([service("crown"), kek()]);
    const r = await post("/v1/artifacts/successors", { from: v1.stanza, header: bad.header });
    assert.equal(r.statusCode, 403, r.body);
    assert.equal(r.json().error, "tier_violation");
    const e = await last();
    assert.equal(e.action, "artifacts.succeed");
    assert.equal(e.outcome, "denied");
    assert.equal((await get(`/v1/artifacts/${old.id}`)).json().supersededBy, undefined);
  });
});
