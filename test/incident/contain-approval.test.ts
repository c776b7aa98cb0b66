/**
 * The responder's two commands under dual control, against a key service on loopback (HTTPS,
 * dev CA) on SQLite and PostgreSQL with `approvals: {contain: 2}`:
 *   1. `incident open --scope principal:ID --reason ... --contain` asks the service to contain
 *      the leaked token (block it, revoke it, revoke the client certificates it used): an
 *      approval request; nothing is contained yet (the thief still opens files);
 *   the requester cannot approve its own request, an unwrap-only token cannot approve either;
 *   a second admin approves: the service executes it (blocked, token revoked, certificates
 *   revoked: those anomaly detection saw the principal use and the one the responder named);
 *   2. `incident eradicate ID DIR --report FILE` finishes the containment, assesses, reseals
 *      the file the thief opened and writes the report naming both approvers.
 * A rejected containment fails closed: the rerun exits 8 and the incident stays open.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseHeader, verifyHeader } from "../../src/format/header.js";
import { SERVICE_STANZA, stanzaToWire } from "../../src/keys/service/stanza.js";
import { RevokedCertRepo } from "../../src/service/auth/revoked-certs.js";
import { TokenRepo } from "../../src/service/index.js";
import { bearer } from "../service/helpers.js";
import { incidentSuite } from "./fixture.js";

const fp = (s: string) => createHash("sha256").update(s).digest("hex");

for (const kind of ["SQLite", "PostgreSQL"] as const) {
  describe(`incident containment under dual control on ${kind}`, () => {
    const suite = incidentSuite({
      db: kind,
      approvals: { contain: 2 },
      tokens: {
        admin: ["admin", "wrap", "unwrap", "rewrap", "audit", "reader"],
        admin2: ["admin"],
        writer: ["wrap", "unwrap"],
        thief: ["unwrap"],
        other: ["unwrap"],
      },
      key: "weights",
      models: ["m1", "m2"],
      modelBytes: 50_000,
    });
    const revoked = async (who: string) =>
      Boolean(
        (await new TokenRepo(suite.fx.db).list()).find(
          (x) => `token:${x.id}` === suite.fx.tok[who]!.id,
        )?.revoked,
      );

    test("open --contain waits for a second admin; then eradicate --report finishes it", async (t) => {
      if (suite.skip) return t.skip(suite.skip);
      const { tok, files, s, db, app, dir, ok, cli, record } = suite.fx;
      // The thief opens m1 with the leaked token (its file key is now known to it).
      await ok(["open", files.m1!.path, "-o", join(s.dir, "m1.stolen")], "thief");
      const st = parseHeader(readFileSync(files.m1!.path)).stanzas.find(
        (x) => x.type === SERVICE_STANZA,
      )!;
      const u = await app.inject({
        method: "POST",
        url: "/v1/datakeys/unwrap",
        headers: bearer(tok.thief!.token),
        payload: { stanza: stanzaToWire(st) },
      });
      assert.equal(u.statusCode, 200, u.body);
      const stolenKey = Buffer.from(u.json().fileKey, "base64");
      // A client certificate the thief used, as anomaly detection records it (first-seen
      // tuples), and one the responder names on the command line.
      const seen = fp("thief-cert-seen");
      await db.db
        .insertInto("anomaly_clients")
        .values({
          id: fp("tuple"),
          principal: tok.thief!.id,
          source: "127.0.0.1",
          cert: seen,
          workload: "",
          first_seen: new Date().toISOString(),
        })
        .execute();
      const named = fp("thief-cert-named")
        .toUpperCase()
        .replace(/(..)(?!$)/g, "$1:");

      // Command 1.
      const opened = await ok([
        "incident",
        "open",
        "--scope",
        `principal:${tok.thief!.id}`,
        "--reason",
        "token pasted in a public issue",
        "--contain",
        "--fingerprint",
        named,
      ]);
      const id = opened.stdout.trim();
      assert.match(
        opened.stderr,
        /waits for a second approval: tensorseal service approvals approve apr_/,
      );
      let rec = record(id);
      assert.equal(rec.state, "open");
      const act = rec.actions.find((a: { id: string }) => a.id === "contain:principals");
      assert.equal(act.state, "waiting");
      const apr = act.approval.id as string;
      assert.match(apr, /^apr_[0-9a-f]{24}$/);
      // Acts only after the approval: nothing is contained yet.
      await ok(["open", files.m2!.path, "-o", join(s.dir, "m2.stolen")], "thief");
      assert.equal(await revoked("thief"), false);

      // Self-approval is refused; so is an approver without the right; nothing executes.
      const self = await cli(["service", "approvals", "approve", apr], "admin");
      assert.equal(self.status, 8, self.stderr);
      assert.match(self.stderr, /another principal must approve/);
      const weak = await cli(["service", "approvals", "approve", apr], "other");
      assert.equal(weak.status, 8, weak.stderr);
      // A rerun of contain before the approval still waits (asks the same request, no new one).
      await ok(["incident", "contain", id]);
      rec = record(id);
      assert.equal(rec.state, "open");
      assert.equal(
        rec.actions.find((a: { id: string }) => a.id === "contain:principals").approval.id,
        apr,
      );
      await ok(["open", files.m2!.path, "-o", join(s.dir, "m2.stolen2")], "thief");

      // The second command before the approval stops there: nothing is eradicated.
      const early = await ok(["incident", "eradicate", id, dir]);
      assert.match(early.stderr, /waits for a second approval/);
      rec = record(id);
      assert.equal(rec.state, "open");
      assert.ok(!rec.actions.some((a: { step: string }) => a.step !== "contain"));

      // The second admin approves: the service contains at once.
      await ok(["service", "approvals", "approve", apr], "admin2");
      const refused = await cli(["open", files.m1!.path, "-o", join(s.dir, "m1.again")], "thief");
      assert.equal(refused.status, 8, "contained: the thief is refused");
      assert.equal(await revoked("thief"), true, "its token is revoked");
      const certs = new RevokedCertRepo(db, 0);
      assert.equal(await certs.isRevoked(seen), true, "the certificate it used is revoked");
      assert.equal(await certs.isRevoked(named.replace(/:/g, "").toLowerCase()), true);
      assert.equal(await revoked("other"), false, "nobody else is touched");

      // Command 2.
      const report = join(s.dir, "incident.md");
      await ok(["incident", "eradicate", id, dir, "--report", report]);
      rec = record(id);
      assert.equal(rec.state, "eradicated");
      assert.ok(rec.times.contained && rec.times.assessed && rec.times.eradicated);
      const done = rec.actions.find((a: { id: string }) => a.id === "contain:principals");
      assert.equal(done.state, "done");
      assert.deepEqual(done.approval.approvers.sort(), [tok.admin!.id, tok.admin2!.id].sort());
      assert.deepEqual(
        rec.files.map((f: { file: string; outcome: string }) => [f.file, f.outcome]).sort(),
        [
          [files.m1!.path, "resealed"],
          [files.m2!.path, "resealed"],
        ].sort(),
      );
      assert.throws(() => verifyHeader(parseHeader(readFileSync(files.m1!.path)), stolenKey));
      const md = readFileSync(report, "utf8");
      assert.ok(md.includes(`${apr.replace("_", "\\_")} executed by`), md);
      assert.ok(md.includes(tok.admin2!.id));
      for (const n of ["m1", "m2"]) {
        const out = join(s.dir, `${n}.after`);
        await ok(["open", files[n]!.path, "-o", out], "writer");
        assert.deepEqual(readFileSync(out), files[n]!.plain);
      }
    });

    test("a rejected containment fails closed: the rerun exits 8, the incident stays open", async (t) => {
      if (suite.skip) return t.skip(suite.skip);
      const { tok, dir, ok, cli, record } = suite.fx;
      const id = (
        await ok([
          "incident",
          "open",
          "--scope",
          `principal:${tok.other!.id}`,
          "--reason",
          "suspicious",
          "--contain",
        ])
      ).stdout.trim();
      const apr = record(id).actions[0].approval.id as string;
      await ok(["service", "approvals", "reject", apr], "admin2");
      const r = await cli(["incident", "contain", id], "admin");
      assert.equal(r.status, 8, r.stderr);
      assert.match(r.stderr, /ended rejected/);
      assert.equal(record(id).state, "open");
      assert.equal(record(id).actions[0].state, "failed");
      const e = await cli(["incident", "eradicate", id, dir], "admin");
      assert.notEqual(e.status, 0, "nothing is eradicated before containment");
      assert.equal(await revoked("other"), false);
    });
  });
}
