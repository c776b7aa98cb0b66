/**
 * `tensorseal incident` against the local keystore, end to end with the real CLI: a key version
 * is stolen (an attacker keeps a copy of keystore.json and its root key file); open -> contain
 * -> assess -> eradicate -> report. Afterwards the stolen copy opens no current file, each
 * resealed file has a new file key (the old one, taken from the old header, opens nothing of
 * it), and the recipients still open everything. A SIGKILL in the middle of eradicate, then a
 * rerun, finishes the work without resealing any file twice.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { closeWorkers, openFile } from "../../src/engine/index.js";
import { parseHeader, verifyHeader } from "../../src/format/header.js";
import { openMessage } from "../../src/format/message.js";
import type { Identity } from "../../src/format/stanza.js";
import { unlockFileKey } from "../../src/format/unlock.js";
import { parseKekStanza } from "../../src/keys/kek.js";
import { parseIdentityFile } from "../../src/keys/recipients.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { start } from "../cli/interrupt-helpers.js";

describe("incident: local keystore", () => {
  let s: Sandbox;
  let alice: { recipient: string; identity: Identity; file: string };

  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    const file = join(s.dir, "alice.key");
    const r = s.run(["keygen", "-o", file, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    alice = {
      recipient: JSON.parse(r.stdout.toString()).recipient,
      identity: parseIdentityFile(readFileSync(file, "utf8"))[0]!,
      file,
    };
  });
  after(async () => {
    s.cleanup();
    await closeWorkers();
  });

  const ok = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = s.run(args, { env });
    assert.equal(r.status, 0, `${args.join(" ")}: ${r.stderr}`);
    return r;
  };

  function seal(dir: string, name: string, size: number): { path: string; plain: Buffer } {
    const plain = randomBytes(size);
    writeFileSync(join(dir, `${name}.bin`), plain);
    const path = join(dir, `${name}.tseal`);
    ok(["seal", join(dir, `${name}.bin`), "-o", path, "-k", "default", "-r", alice.recipient]);
    return { path, plain };
  }

  const kekVersions = (path: string) =>
    parseHeader(readFileSync(path))
      .stanzas.filter((st) => st.type === "kek")
      .map((st) => parseKekStanza(st).version);

  test("open -> contain -> assess -> eradicate -> report: the stolen version opens no current file", async () => {
    const dir = join(s.dir, "models");
    mkdirSync(dir);
    const old = seal(dir, "old", 20_000); // v1
    ok(["keys", "rotate", "default"]);
    const v2 = [seal(dir, "a", 200_000), seal(dir, "b", 50_000)];
    // The attacker's copy: keystore.json as it was (v1 and v2 enabled), with its root key.
    const stolen = join(s.dir, "stolen");
    mkdirSync(stolen);
    copyFileSync(join(s.env.TENSORSEAL_HOME!, "keystore.json"), join(stolen, "keystore.json"));
    ok(["keys", "rotate", "default"]); // scheduled rotation: v3
    const v3 = seal(dir, "c", 10_000);
    const oldBytes = new Map(v2.map((f) => [f.path, readFileSync(f.path)]));

    const id = ok(["incident", "open", "--scope", "key:default@2", "--reason", "laptop stolen"])
      .stdout.toString()
      .trim();
    assert.match(id, /^inc-[0-9]{8}-[0-9a-f]{8}$/);
    const rec = () =>
      JSON.parse(readFileSync(join(s.env.TENSORSEAL_HOME!, "incidents", `${id}.json`), "utf8"));
    assert.equal(rec().severity, "high");
    assert.deepEqual(rec().compromised, [{ key: "default", versions: [2] }]);

    ok(["incident", "contain", id]);
    const show = () => JSON.parse(ok(["keys", "show", "default"]).stdout.toString());
    assert.equal(show().versions[1].state, "disabled");
    // Contained: v2 releases nothing any more (open refuses, exit 9).
    const refused = s.run(["open", v2[0]!.path, "-o", join(s.dir, "x.bin")]);
    assert.equal(refused.status, 9, refused.stderr);
    assert.equal(rec().state, "contained");

    const assessed = JSON.parse(ok(["incident", "assess", id, dir, "--json"]).stdout.toString());
    assert.deepEqual(
      assessed.files.map((f: { file: string; class: string }) => [f.file, f.class]).sort(),
      v2.map((f) => [f.path, "exposed"]).sort(),
    );

    ok(["incident", "eradicate", id, dir, "--known-recipient", alice.recipient]);
    const after = rec();
    assert.equal(after.state, "eradicated");
    const key = show();
    assert.equal(key.versions[1].state, "scheduled_for_destruction");
    assert.equal(key.minDecryptionVersion, 3);
    const primary = key.primaryVersion;
    assert.equal(primary, 3, "the primary was not compromised: no rotation");

    for (const f of [old, ...v2, v3]) {
      assert.deepEqual(kekVersions(f.path), [primary], `${f.path} is on the new primary`);
      // Recipients still open it: the keystore and alice.
      const out = join(s.dir, `o-${randomBytes(3).toString("hex")}`);
      ok(["open", f.path, "-o", out]);
      assert.deepEqual(readFileSync(out), f.plain);
      await openFile(f.path, `${out}.a`, { identities: [alice.identity], workers: 0 });
      assert.deepEqual(readFileSync(`${out}.a`), f.plain);
      // The stolen keystore copy (v1, v2 and the root key) opens none of them.
      const r = s.run(["open", f.path, "-o", `${out}.stolen`], {
        env: { TENSORSEAL_HOME: stolen },
      });
      assert.notEqual(r.status, 0, `the stolen keystore opened ${f.path}`);
      assert.equal(existsSync(`${out}.stolen`), false);
    }
    // Resealed: the old file key (from the old header) opens nothing of the new file.
    for (const f of v2) {
      const before = oldBytes.get(f.path)!;
      const oldKey = await unlockFileKey(parseHeader(before), [alice.identity]);
      const now = readFileSync(f.path);
      const h = parseHeader(now);
      assert.throws(() => verifyHeader(h, oldKey));
      assert.throws(() => openMessage(now, h, oldKey));
      assert.notDeepEqual(await unlockFileKey(h, [alice.identity]), oldKey);
    }
    const outcomes = Object.fromEntries(
      after.files.map((f: { file: string; outcome: string }) => [f.file, f.outcome]),
    );
    assert.deepEqual(outcomes, {
      [v2[0]!.path]: "resealed",
      [v2[1]!.path]: "resealed",
      [old.path]: "rewrapped",
    });
    const rewrapped = after.files.find((f: { file: string }) => f.file === old.path);
    assert.match(rewrapped.newHeaderDigest, /^sha256:[0-9a-f]{64}$/);
    assert.notEqual(rewrapped.newHeaderDigest, rewrapped.oldHeaderDigest);
    for (const a of after.actions) {
      assert.equal(a.state, "done", a.id);
      assert.ok(a.actor && a.started && a.finished, a.id);
    }

    // A rerun does nothing more: same digests, same actions.
    const digests = [old, ...v2, v3].map((f) =>
      createHash("sha256").update(readFileSync(f.path)).digest("hex"),
    );
    ok(["incident", "eradicate", id, dir, "--known-recipient", alice.recipient]);
    assert.deepEqual(
      [old, ...v2, v3].map((f) => createHash("sha256").update(readFileSync(f.path)).digest("hex")),
      digests,
    );

    // Report: JSON fields and Markdown sections.
    const json = JSON.parse(ok(["incident", "report", id, "--format", "json"]).stdout.toString());
    assert.equal(json.format, "tensorseal-incident-report");
    assert.equal(json.incident.scope, "key:default@2");
    assert.equal(json.incident.state, "eradicated");
    for (const t of ["detected", "opened", "contained", "assessed", "eradicated"])
      assert.ok(Date.parse(json.timeline[t]) > 0, t);
    assert.ok(json.timeline.secondsToContain >= 0);
    assert.deepEqual(
      [json.files.resealed, json.files.rewrapped, json.files.unreachable],
      [2, 1, 0],
    );
    assert.ok(json.residualRisk.some((r: string) => /old copy of a header/.test(r)));
    assert.equal(json.forensic.chain.verified, false);
    assert.ok(json.actions.some((a: { id: string }) => a.id === "destroy:default@2"));
    const md = ok(["incident", "report", id]).stdout.toString();
    for (const h of [
      "# Incident",
      "## Summary",
      "## Timeline",
      "## Actions",
      "## Files",
      "## Exposure",
      "## Residual risk",
      "## Forensic appendix",
    ])
      assert.ok(md.includes(`\n${h}`) || md.startsWith(h), `missing section ${h}`);
    const html = join(s.dir, "r.html");
    ok(["incident", "report", id, "--format", "html", "-o", html]);
    assert.match(readFileSync(html, "utf8"), /^<!doctype html>[\s\S]*<h2>Residual risk<\/h2>/);

    // list and close.
    assert.match(
      ok(["incident", "list"]).stdout.toString(),
      new RegExp(`${id}\teradicated\thigh\tkey:default@2`),
    );
    ok(["incident", "close", id, "--note", "postmortem"]);
    assert.equal(rec().state, "closed");
  });

  test("eradicate killed mid-reseal: the rerun finishes, no file resealed twice", async () => {
    const dir = join(s.dir, "fleet");
    mkdirSync(dir);
    const files = [];
    for (let i = 0; i < 8; i++) files.push(seal(dir, `f${i}`, 3 << 20));
    const original = new Map(
      files.map((f) => [f.path, readFileSync(f.path).subarray(0, 200).toString("hex")]),
    );
    const primary = JSON.parse(ok(["keys", "show", "default"]).stdout.toString()).primaryVersion;
    const id = ok(["incident", "open", "--scope", `key:default@${primary}`, "--reason", "drill"])
      .stdout.toString()
      .trim();
    ok(["incident", "contain", id]);
    ok(["incident", "assess", id, dir]);
    const journal = join(s.env.TENSORSEAL_HOME!, "incidents", `${id}.reseal.jsonl`);
    const args = [
      "incident",
      "eradicate",
      id,
      dir,
      "--known-recipient",
      alice.recipient,
      "--concurrency",
      "1",
    ];
    const run = start(s, args);
    let done = false;
    void run.exited.then(() => {
      done = true;
    });
    const deadline = Date.now() + 120_000;
    while (!done && Date.now() < deadline) {
      const lines = existsSync(journal) ? readFileSync(journal, "utf8").split("\n").length : 0;
      if (lines >= 4) break; // header line and two files
      await delay(5);
    }
    assert.equal(done, false, `eradicate ended before it could be killed: ${run.stderr()}`);
    run.child.kill("SIGKILL");
    assert.equal(await run.exited, 137);
    const atKill = new Map(
      files.map((f) => [f.path, readFileSync(f.path).subarray(0, 200).toString("hex")]),
    );
    const doneBefore = files.filter((f) => atKill.get(f.path) !== original.get(f.path));
    assert.ok(
      doneBefore.length >= 1 && doneBefore.length < files.length,
      `resealed before the kill: ${doneBefore.length}`,
    );
    const rec = JSON.parse(
      readFileSync(join(s.env.TENSORSEAL_HOME!, "incidents", `${id}.json`), "utf8"),
    );
    assert.equal(rec.actions.find((a: { id: string }) => a.id === "reseal").state, "started");

    ok(args);
    for (const f of doneBefore)
      assert.equal(
        readFileSync(f.path).subarray(0, 200).toString("hex"),
        atKill.get(f.path),
        `${f.path} resealed twice`,
      );
    const final = JSON.parse(
      readFileSync(join(s.env.TENSORSEAL_HOME!, "incidents", `${id}.json`), "utf8"),
    );
    assert.equal(final.state, "eradicated");
    const resealed = final.files.filter((f: { outcome: string }) => f.outcome === "resealed");
    assert.equal(resealed.length, files.length);
    for (const f of files) {
      const out = join(s.dir, `k-${randomBytes(3).toString("hex")}`);
      await openFile(f.path, out, { identities: [alice.identity], workers: 0 });
      assert.deepEqual(readFileSync(out), f.plain);
      assert.notEqual(kekVersions(f.path)[0], primary);
    }
  });

  test("refusals: a bad scope, an unknown version, a non-key scope without the key service; close before eradication", () => {
    const bad = s.run(["incident", "open", "--scope", "box:1", "--reason", "x"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--scope must be/);
    const v = s.run(["incident", "open", "--scope", "key:default@99", "--reason", "x"]);
    assert.equal(v.status, 2);
    assert.match(v.stderr, /has no version 99/);
    const p = s.run(["incident", "open", "--scope", "principal:token:abc", "--reason", "x"]);
    assert.equal(p.status, 2);
    assert.match(p.stderr, /needs the key service/);
    const id = ok(["incident", "open", "--scope", "key:default", "--reason", "whole key"])
      .stdout.toString()
      .trim();
    const c = s.run(["incident", "close", id]);
    assert.equal(c.status, 2);
    assert.match(c.stderr, /not eradicated/);
    // The responder's second command on an incident never contained: it contains and assesses
    // first (nothing is eradicated before containment), then goes on.
    const e = s.run(["incident", "eradicate", id, s.dir]);
    assert.ok(e.status === 0 || e.status === 1, e.stderr.toString());
    const steps = JSON.parse(
      readFileSync(join(s.env.TENSORSEAL_HOME!, "incidents", `${id}.json`), "utf8"),
    ).actions.map((a: { step: string }) => a.step);
    assert.ok(steps.indexOf("contain") >= 0 && steps.indexOf("contain") < steps.indexOf("assess"));
    assert.ok(steps.indexOf("assess") < steps.indexOf("eradicate"), steps.join(","));
    // A live process working on the incident locks it; a dead one's lock is taken over.
    const lock = join(s.env.TENSORSEAL_HOME!, "incidents", `${id}.lock`);
    writeFileSync(lock, `${process.pid}\n`);
    const busy = s.run(["incident", "close", id, "--force"]);
    assert.equal(busy.status, 2);
    assert.match(busy.stderr, new RegExp(`being worked on by process ${process.pid}`));
    writeFileSync(lock, "2147483646\n");
    ok(["incident", "close", id, "--force"]);
    assert.equal(existsSync(lock), false);
    assert.equal(s.run(["incident", "contain", "inc-bad"]).status, 2);
  });
});
