/**
 * `--json` on every command that reports a result: stdout is one JSON document with a stable
 * shape (parsed here, field by field), and nothing else. The key service's commands that talk
 * HTTPS are covered by escaping.test.ts (a hostile service) and service.test.ts.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Sandbox, sandbox } from "./helpers.js";

describe("--json", () => {
  let s: Sandbox;
  before(() => {
    s = sandbox();
    writeFileSync(join(s.dir, "w.bin"), randomBytes(100_000));
    const model = join(s.dir, "model");
    mkdirSync(model);
    writeFileSync(join(model, "a.bin"), randomBytes(10_000));
  });
  after(() => s.cleanup());

  /** Runs with --json; exit `status`; stdout must parse, and is returned parsed. */
  function json(args: string[], opts: { input?: Buffer; status?: number } = {}) {
    const r = s.run([...args, "--json"], opts.input ? { input: opts.input } : {});
    assert.equal(r.status, opts.status ?? 0, `${args.join(" ")}: ${r.stderr}`);
    const text = r.stdout.toString();
    try {
      return JSON.parse(text);
    } catch {
      assert.fail(`${args.join(" ")}: stdout is not JSON: ${JSON.stringify(text)}`);
    }
  }

  test("keystore, keys and keygen", () => {
    assert.deepEqual(json(["init"]), { home: join(s.dir, "home"), keys: ["default"] });
    const id = json(["keygen", "-o", "id.txt"]);
    assert.equal(id.output, "id.txt");
    assert.match(id.recipient, /^tseal1/);
    const k = json(["keys", "create", "k1"]);
    assert.equal(k.name, "k1");
    assert.equal(k.primaryVersion, 1);
    const list = json(["keys", "list"]);
    assert.deepEqual(
      list.map((x: { name: string }) => x.name),
      ["default", "k1"],
    );
    assert.equal(json(["keys", "show", "k1"]).name, "k1");
    assert.equal(json(["keys", "rotate", "k1"]).primaryVersion, 2);
    assert.equal(json(["keys", "set", "k1", "--rotation-period", "90d"]).rotationPeriod, 7776000);
    const disabled = json(["keys", "disable", "k1", "1"]);
    assert.equal(disabled.versions[0].state, "disabled");
    assert.equal(json(["keys", "enable", "k1", "1"]).versions[0].state, "enabled");
    const doomed = json(["keys", "schedule-destroy", "k1", "1"]);
    assert.equal(doomed.versions[0].state, "scheduled_for_destruction");
    assert.equal(json(["keys", "cancel-destroy", "k1", "1"]).versions[0].state, "disabled");
    assert.deepEqual(json(["keys", "purge"]), { destroyed: [] });
    assert.deepEqual(json(["keys", "rotate-due"]), { rotated: [] });
  });

  test("seal, open, inspect, verify, seal-dir, open-dir, rewrap", () => {
    const sealed = json(["seal", "w.bin", "-o", "w.tseal", "-l", "team=ml"]);
    assert.equal(sealed.output, "w.tseal");
    assert.deepEqual(sealed.recipients, ["kek:default"]);
    assert.equal(typeof sealed.sealedLength, "number");
    // From stdin to a file: a result too (stdout is free).
    const piped = json(["seal", "-", "-o", "p.tseal"], { input: randomBytes(5000) });
    assert.equal(piped.output, "p.tseal");
    assert.equal(piped.plaintextLength, 5000);
    const opened = json(["open", "w.tseal", "-o", "w.out"]);
    assert.deepEqual([opened.output, opened.plaintextLength], ["w.out", 100_000]);
    const fromStdin = json(["open", "-", "-o", "p.out"], {
      input: s.run(["seal", "w.bin", "-o", "-"]).stdout,
    });
    assert.equal(fromStdin.plaintextLength, 100_000);
    const info = json(["inspect", "w.tseal"]);
    assert.deepEqual(info.labels, { team: "ml" });
    assert.equal(info.verified, false);
    assert.deepEqual(json(["verify", "w.tseal", "p.tseal"]), [
      { file: "w.tseal", ok: true },
      { file: "p.tseal", ok: true },
    ]);
    // A failing file still gives the list, with its code; the exit code is its own.
    writeFileSync(join(s.dir, "junk.tseal"), "not sealed at all, just text");
    const failed = json(["verify", "w.tseal", "junk.tseal"], { status: 3 });
    assert.deepEqual(failed[1], {
      file: "junk.tseal",
      ok: false,
      code: "E_NOT_TSEAL",
      error: "not a .tseal file (magic bytes do not match)",
    });
    const one = json(["verify", "junk.tseal"], { status: 3 });
    assert.equal(one[0].code, "E_NOT_TSEAL");
    const dir = json(["seal-dir", "model", "-o", "model.sealed"]);
    assert.equal(dir.output, "model.sealed");
    assert.match(dir.model, /^[0-9a-f]{32}$/);
    assert.deepEqual(
      dir.files.map((f: { path: string }) => f.path),
      ["a.bin"],
    );
    const od = json(["open-dir", "model.sealed", "-o", "model.out"]);
    assert.deepEqual([od.output, od.model, od.files[0].size], ["model.out", dir.model, 10_000]);
    const rw = json(["rewrap", "w.tseal", "--add-recipient", "kek:k1"]);
    assert.deepEqual([rw.results[0].ok, rw.results[0].changed, rw.skipped], [true, true, []]);
  });

  test("root and service administration on the local database", () => {
    const shares = json(["root", "split", "--shares", "3", "--threshold", "2", "-o", "."]);
    assert.equal(shares.threshold, 2);
    assert.equal(shares.files.length, 3);
    const t = json(["service", "token", "create", "--scope", "admin", "--label", "ci"]);
    assert.match(t.id, /^[0-9a-f]{16}$/);
    assert.equal(typeof t.token, "string");
    assert.deepEqual([t.scopes, t.label], [["admin"], "ci"]);
    const tokens = json(["service", "token", "list"]);
    assert.equal(tokens[0].id, t.id);
    assert.equal(JSON.stringify(tokens).includes(t.token), false); // never the token itself
    assert.deepEqual(json(["service", "token", "revoke", t.id]), { id: t.id, revoked: true });
    const fp = "ab".repeat(32);
    assert.deepEqual(json(["service", "cert", "revoke", fp]), {
      fingerprint: fp,
      revoked: true,
      already: false,
    });
    assert.equal(json(["service", "cert", "revoke", fp]).already, true);
    assert.equal(json(["service", "cert", "list-revoked"]).length, 1);
    const rootKey = join(s.dir, "service-root.key");
    writeFileSync(rootKey, randomBytes(32).toString("hex"));
    const split = json([
      "service",
      "root",
      "split",
      "--root-key-file",
      rootKey,
      "--shares",
      "3",
      "--threshold",
      "2",
      "-o",
      "svc-shares",
    ]);
    assert.deepEqual([split.threshold, split.files.length], [2, 3]);
    assert.equal(typeof split.splitId, "string");
    // A database no service ever ran on has no audit key: a failed verification, still JSON.
    const audit = json(["audit", "verify", "--checkpoint-every", "0"], { status: 5 });
    assert.equal(audit.ok, false);
    assert.equal(audit.entries, 0);
    assert.ok(Array.isArray(audit.problems) && audit.problems.length > 0);
  });

  test("policy test", () => {
    const req = join(s.dir, "req.json");
    writeFileSync(
      req,
      JSON.stringify([
        {
          name: "admin creates",
          principal: { id: "token:a", roles: ["admin"] },
          action: "keys.create",
          resource: { type: "Service" },
          expect: "deny",
        },
      ]),
    );
    const run = s.run(["policy", "test", "--request", req, "--json"]);
    const doc = JSON.parse(run.stdout.toString());
    assert.equal(run.status, doc.mismatches > 0 ? 1 : 0, run.stderr);
    assert.equal(doc.requests, 1);
    assert.equal(typeof doc.policies, "string");
    const r = doc.results[0];
    assert.equal(r.name, "admin creates");
    assert.ok(["allow", "deny"].includes(r.decision));
    assert.equal(r.mismatch, r.decision !== "deny");
    assert.equal(doc.mismatches, r.mismatch ? 1 : 0);
  });

  test("refused where stdout carries data", () => {
    for (const args of [["seal", "w.bin", "-o", "-"], ["open", "w.tseal", "-o", "-"], ["keygen"]]) {
      const r = s.run([...args, "--json"]);
      assert.equal(r.status, 2, args.join(" "));
      assert.match(r.stderr, /--json needs -o FILE/);
      assert.equal(r.stdout.length, 0);
    }
  });
});
