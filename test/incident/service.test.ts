/**
 * `tensorseal incident` against a key service on loopback (HTTPS, dev CA), on SQLite and
 * PostgreSQL, with dual control for destruction (M = 2). Two incidents, as a responder runs
 * them with the real CLI:
 *  - a leaked unwrap token (principal scope): contain blocks it at once (its next open is
 *    refused), assess finds from the audit exactly the artifacts it opened, eradicate reseals
 *    those files (the file key the thief got opens nothing of them), the report carries the
 *    releases and a verified audit chain. A token that may not block fails closed.
 *  - a compromised key version (key scope): contain rotates and disables it; eradicate without
 *    --reenable leaves the files unreachable and destroys nothing (exit 1); with it, exposed
 *    files are resealed, an at-risk one (never opened) rewrapped, the minimum raised, and destruction waits for a
 *    second admin's approval; the rerun after the approval completes, and the report names both
 *    approvers.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseHeader, verifyHeader } from "../../src/format/header.js";
import { openMessage } from "../../src/format/message.js";
import { parseServiceStanza, SERVICE_STANZA, stanzaToWire } from "../../src/keys/service/stanza.js";
import { TokenRepo } from "../../src/service/index.js";
import { bearer } from "../service/helpers.js";
import { incidentSuite } from "./fixture.js";

for (const kind of ["SQLite", "PostgreSQL"] as const) {
  describe(`incident against the key service on ${kind}`, () => {
    const suite = incidentSuite({
      db: kind,
      approvals: { destroy: 2 },
      tokens: {
        admin: ["admin", "wrap", "unwrap", "rewrap", "audit"],
        admin2: ["admin"],
        writer: ["wrap", "unwrap"],
        thief: ["unwrap"],
        reader: ["reader"],
      },
      key: "weights",
      models: ["m1", "m2", "m3"],
      modelBytes: 100_000,
    });
    const serviceStanza = (path: string) =>
      parseHeader(readFileSync(path)).stanzas.find((st) => st.type === SERVICE_STANZA)!;

    test("leaked token: contain blocks it, assess finds what it opened, eradicate reseals exactly that", async (t) => {
      if (suite.skip) return t.skip(suite.skip);
      const { tok, files, s, db, app, dir, ok, cli, record } = suite.fx;
      // The thief opens m1 and m2, and keeps m1's file key (as the service released it).
      for (const n of ["m1", "m2"])
        await ok(["open", files[n]!.path, "-o", join(s.dir, `${n}.stolen`)], "thief");
      const u = await app.inject({
        method: "POST",
        url: "/v1/datakeys/unwrap",
        headers: bearer(tok.thief!.token),
        payload: { stanza: stanzaToWire(serviceStanza(files.m1!.path)) },
      });
      assert.equal(u.statusCode, 200, u.body);
      const stolenKey = Buffer.from(u.json().fileKey, "base64");
      const m3Before = readFileSync(files.m3!.path);

      const opened = await ok([
        "incident",
        "open",
        "--scope",
        `principal:${tok.thief!.id}`,
        "--reason",
        "token pasted in a public issue",
      ]);
      const id = opened.stdout.trim();
      assert.equal(record(id).class, "credential-compromise");

      // Fail closed: a token that may not block gets nothing contained.
      const denied = await cli(["incident", "contain", id], "reader");
      assert.equal(denied.status, 8, denied.stderr);
      assert.equal(record(id).state, "open");
      assert.equal(record(id).actions[0].state, "failed");
      const still = await cli(["open", files.m3!.path, "-o", join(s.dir, "m3.x")], "thief");
      assert.equal(still.status, 0, "not contained yet: the thief still opens files");

      await ok(["incident", "contain", id]);
      assert.equal(record(id).state, "contained");
      // Blocked and its token revoked for good (not only blocked).
      const revoked = (await new TokenRepo(db).list()).find(
        (x) => `token:${x.id}` === tok.thief!.id,
      );
      assert.ok(revoked?.revoked, "the leaked token is revoked");
      const after = await cli(["open", files.m1!.path, "-o", join(s.dir, "m1.y")], "thief");
      assert.equal(after.status, 8, "contained: the leaked token is refused");

      const a = JSON.parse((await ok(["incident", "assess", id, dir, "--json"])).stdout);
      assert.deepEqual(a.principals, [tok.thief!.id]);
      assert.deepEqual(a.endpoints, ["127.0.0.1"]);
      assert.equal(a.artifacts.length, 3, "m1, m2 and m3 (opened before containment)");
      assert.deepEqual(
        a.files.map((f: { file: string }) => f.file).sort(),
        [files.m1!.path, files.m2!.path, files.m3!.path].sort(),
      );
      assert.ok(a.files.every((f: { class: string }) => f.class === "exposed"));

      await ok(["incident", "eradicate", id, dir]);
      const r = record(id);
      assert.equal(r.state, "eradicated");
      assert.deepEqual(
        r.files.map((f: { outcome: string }) => f.outcome),
        ["resealed", "resealed", "resealed"],
      );
      const now = readFileSync(files.m1!.path);
      const h = parseHeader(now);
      assert.throws(() => verifyHeader(h, stolenKey));
      assert.throws(() => openMessage(now, h, stolenKey));
      assert.notDeepEqual(readFileSync(files.m3!.path), m3Before);
      for (const n of ["m1", "m2", "m3"]) {
        const out = join(s.dir, `${n}.after`);
        await ok(["open", files[n]!.path, "-o", out], "writer");
        assert.deepEqual(readFileSync(out), files[n]!.plain);
      }

      const rep = JSON.parse((await ok(["incident", "report", id, "--format", "json"])).stdout);
      assert.equal(rep.forensic.chain.verified, true, rep.forensic.chain.reason);
      assert.equal(rep.forensic.chain.ok, true, JSON.stringify(rep.forensic.chain.problems));
      assert.ok(rep.forensic.releases.length >= 3);
      assert.ok(
        rep.forensic.releases.every((x: { principal: string }) => x.principal === tok.thief!.id),
      );
      assert.ok(
        rep.forensic.entries.some(
          (e: { action: string; outcome: string; resource?: Record<string, unknown> }) =>
            e.action === "approvals.execute" &&
            e.outcome === "allowed" &&
            e.resource?.operation === "contain" &&
            JSON.stringify(e.resource?.principals) === JSON.stringify([tok.thief!.id]),
        ),
        "the containment is in the audit",
      );
      assert.ok(
        rep.residualRisk.some((x: string) =>
          /tokens and known client certificates are revoked; reissue/.test(x),
        ),
      );
      const md = (await ok(["incident", "report", id])).stdout;
      assert.match(md, /## Forensic appendix\n\n- Audit chain: verified/);
      assert.ok(md.includes(tok.thief!.id));
    });

    test("key version: contain disables, eradicate waits for the second approval, then completes", async (t) => {
      if (suite.skip) return t.skip(suite.skip);
      const { tok, files, s, app, dir, ok, cli, record } = suite.fx;
      // m4: sealed under v1 and never opened: at risk, not exposed.
      const plain4 = randomBytes(20_000);
      writeFileSync(join(dir, "m4.bin"), plain4);
      const m4 = { path: join(dir, "m4.tseal"), plain: plain4 };
      const sealed4 = await ok(
        [
          "seal",
          join(dir, "m4.bin"),
          "-r",
          "service:weights",
          "-o",
          m4.path,
          "--register",
          "--json",
        ],
        "writer",
      );
      const m4Artifact: string = JSON.parse(sealed4.stdout).artifacts[0];
      const m4Before = readFileSync(m4.path);
      const id = (
        await ok([
          "incident",
          "open",
          "--scope",
          "key:weights@1",
          "--reason",
          "database copy leaked",
        ])
      ).stdout.trim();
      await ok(["incident", "contain", id]);
      const key = async () =>
        (
          await app.inject({ url: "/v1/keys/weights", headers: bearer(tok.admin!.token) })
        ).json() as {
          primaryVersion: number;
          minDecryptionVersion: number;
          versions: { version: number; state: string }[];
        };
      assert.equal((await key()).primaryVersion, 2, "the compromised primary was rotated");
      assert.equal((await key()).versions[0]!.state, "disabled");
      // Every file is on v1; m1..m3 were released (previous test): exposed; m4 at risk.
      const a = JSON.parse((await ok(["incident", "assess", id, dir, "--json"])).stdout);
      const classes = Object.fromEntries(
        a.files.map((f: { file: string; class: string }) => [f.file, f.class]),
      );
      assert.deepEqual(classes, {
        [files.m1!.path]: "exposed",
        [files.m2!.path]: "exposed",
        [files.m3!.path]: "exposed",
        [m4.path]: "at-risk",
      });
      assert.ok(a.releases.length >= 3);

      const blocked = await cli(["incident", "eradicate", id, dir], "admin");
      assert.equal(blocked.status, 1, blocked.stderr);
      assert.match(blocked.stderr, /unreachable/);
      assert.equal((await key()).versions[0]!.state, "disabled", "nothing destroyed");

      const waiting = await ok(["incident", "eradicate", id, dir, "--reenable"]);
      assert.match(waiting.stderr, /waiting: .*approval apr_/);
      const r = record(id);
      assert.equal(r.state, "assessed");
      const destroy = r.actions.find((x: { id: string }) => x.id === "destroy:weights@1");
      assert.equal(destroy.state, "waiting");
      assert.equal((await key()).versions[0]!.state, "disabled", "re-disabled after resealing");
      assert.equal((await key()).minDecryptionVersion, 2);
      const all = { ...files, m4 };
      for (const f of Object.values(all))
        assert.equal(parseServiceStanza(serviceStanza(f.path)).version, 2);
      const outcomes = Object.fromEntries(
        r.files.map((f: { file: string; outcome: string }) => [f.file, f.outcome]),
      );
      assert.equal(outcomes[m4.path], "rewrapped");
      assert.equal(outcomes[files.m1!.path], "resealed");
      // Rewrapped: the payload is the same bytes (same file key), only the header moved.
      const m4Now = readFileSync(m4.path);
      const hl = (b: Buffer) => parseHeader(b).headerLength;
      assert.deepEqual(m4Now.subarray(hl(m4Now)), m4Before.subarray(hl(m4Before)));
      // The registry followed the rewrap: m4's artifact names the rewrapped stanza's version.
      const shown = (
        await app.inject({ url: `/v1/artifacts/${m4Artifact}`, headers: bearer(tok.admin!.token) })
      ).json() as { version: number };
      assert.equal(shown.version, 2, "the registration moved with the rewrapped stanza");

      await ok(["service", "approvals", "approve", destroy.approval.id], "admin2");
      await ok(["incident", "eradicate", id, dir]);
      const done = record(id);
      assert.equal(done.state, "eradicated");
      assert.equal((await key()).versions[0]!.state, "scheduled");
      const rep = JSON.parse((await ok(["incident", "report", id, "--format", "json"])).stdout);
      assert.deepEqual(rep.approvals.length, 1);
      assert.equal(rep.approvals[0].state, "executed");
      assert.deepEqual(rep.approvals[0].approvers.sort(), [tok.admin!.id, tok.admin2!.id].sort());
      assert.equal(rep.forensic.chain.ok, true);
      for (const [n, f] of Object.entries(all)) {
        const out = join(s.dir, `${n}.final`);
        await ok(["open", f.path, "-o", out], "writer");
        assert.deepEqual(readFileSync(out), f.plain);
      }
    });
  });
}
