/**
 * root.shares-untested from the rehearsal record: `root split` records the split, `root shares
 * verify` test-recovers it in memory (success and every kind of failure recorded, no secret in
 * the record or the output), `root rotate` retires the splits; doctor judges never / old /
 * failed / fresh, and falls back to the file's age only for shares no record can name.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { doctorJson, of } from "./helpers.js";

const DAY = 86400_000;

function shareB64(file: string): string {
  return /^share=(.+)$/m.exec(readFileSync(file, "utf8"))![1]!;
}

/** Every secret the rehearsal could leak: the shares (base64 and hex) and the root key. */
function assertNoSecret(s: Sandbox, files: string[], texts: string[]): void {
  const root = readFileSync(s.env.TENSORSEAL_ROOT_KEY_FILE!, "utf8").trim();
  const secrets = [
    root,
    root.toUpperCase(),
    Buffer.from(root, "hex").toString("base64"),
    ...files.map(shareB64),
    ...files.map((f) => Buffer.from(shareB64(f), "base64").toString("hex")),
  ];
  for (const t of texts) for (const sec of secrets) assert.ok(!t.includes(sec), "a secret leaked");
}

describe("root shares verify and doctor's root.shares-untested (local keystore)", () => {
  let s: Sandbox;
  let dir: string;
  const share = (i: number, d = dir) => join(d, `root-share-${i}-of-3.txt`);
  const record = () => join(s.env.TENSORSEAL_HOME!, "root-rehearsals.json");
  const untested = (args: string[] = [], env = {}) =>
    of(doctorJson(s, args, env), "root.shares-untested");
  const split = (d: string) => {
    mkdirSync(d, { recursive: true });
    const r = s.run(["root", "split", "--shares", "3", "--threshold", "2", "-o", d]);
    assert.equal(r.status, 0, r.stderr);
    return /split=([0-9a-f]{16})/.exec(readFileSync(share(1, d), "utf8"))![1]!;
  };
  let splitId: string;

  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    dir = join(s.dir, "a");
    splitId = split(dir);
  });
  after(() => s.cleanup());

  test("a split never test-recovered is reported, from the record alone (no share under PATHS)", () => {
    const found = untested();
    assert.equal(found.length, 1);
    assert.equal(found[0]!.severity, "warning");
    assert.equal(found[0]!.message, `root key split ${splitId} (2 of 3) was never test-recovered`);
    assert.equal(found[0]!.file, record());
    assert.match(found[0]!.evidence, /no test recovery in .*root-rehearsals\.json/);
    // Its share files under PATHS are the same split: still one finding.
    assert.equal(untested([dir]).length, 1);
  });

  test("verify: two shares rebuild the current root; recorded without any secret; doctor is clean", () => {
    const r = s.run(["root", "shares", "verify", share(1), share(3), "--json"], {
      env: { TENSORSEAL_ROOT_KEY_FILE: "" }, // needs no unlock: the MAC is the check
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.toString());
    assert.deepEqual(
      { ...out, record: undefined },
      { verified: true, split: splitId, shares: [1, 3], threshold: 2, total: 3, record: undefined },
    );
    const text = readFileSync(record(), "utf8");
    const rec = JSON.parse(text);
    const last = rec.rehearsals.at(-1);
    assert.equal(last.outcome, "recovered");
    assert.deepEqual(last.splits, [splitId]);
    assert.deepEqual(last.shares, [1, 3]);
    assertNoSecret(s, [share(1), share(2), share(3)], [text, r.stdout.toString(), r.stderr]);
    const plain = s.run(["root", "shares", "verify", share(2), share(3)]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stderr + plain.stdout, /rebuild the current root key/);
    assert.deepEqual(untested([dir]), []);
  });

  test("a test recovery older than --share-days is reported; a larger limit accepts it", () => {
    const later = { TENSORSEAL_NOW: new Date(Date.now() + 200 * DAY).toISOString() };
    const found = untested([], later);
    assert.equal(found.length, 1);
    assert.match(
      found[0]!.message,
      new RegExp(`^root key split ${splitId} was last test-recovered 20[01] days ago$`),
    );
    assert.deepEqual(untested(["--share-days", "365"], later), []);
  });

  test("too few shares: exit 2, recorded as a failed rehearsal, reported by doctor", () => {
    const r = s.run(["root", "shares", "verify", share(2)]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /1 share\(s\) given, but this split needs 2 of 3/);
    const last = JSON.parse(readFileSync(record(), "utf8")).rehearsals.at(-1);
    assert.equal(last.outcome, "failed");
    assert.deepEqual(last.shares, [2]);
    assert.match(last.reason, /^E_USAGE: /);
    const found = untested();
    assert.equal(found.length, 1);
    assert.match(
      found[0]!.message,
      new RegExp(`^the last test recovery of root key split ${splitId} failed`),
    );
    assert.match(found[0]!.evidence, /needs 2 of 3.*; last success /);
    assertNoSecret(s, [share(1), share(2), share(3)], [readFileSync(record(), "utf8"), r.stderr]);
    // A later success clears it.
    assert.equal(s.run(["root", "shares", "verify", share(1), share(2)]).status, 0);
    assert.deepEqual(untested(), []);
  });

  test("shares of two splits: exit 2, the failure recorded against both", () => {
    const other = join(s.dir, "b");
    const otherId = split(other);
    const r = s.run(["root", "shares", "verify", share(1), share(2, other)]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /comes from another split/);
    const last = JSON.parse(readFileSync(record(), "utf8")).rehearsals.at(-1);
    assert.deepEqual([...last.splits].sort(), [splitId, otherId].sort());
    const msgs = untested().map((f) => f.message);
    assert.ok(
      msgs.some((m) => m.startsWith(`the last test recovery of root key split ${splitId} failed`)),
    );
    assert.ok(
      msgs.some((m) => m.startsWith(`the last test recovery of root key split ${otherId} failed`)),
    );
    assert.equal(s.run(["root", "shares", "verify", share(1), share(2)]).status, 0);
    assert.equal(s.run(["root", "shares", "verify", share(1, other), share(3, other)]).status, 0);
    assert.deepEqual(untested(), []);
  });

  test("a tampered share (valid checksum) does not rebuild the root: exit 6, recorded", () => {
    const bad = join(s.dir, "tampered.txt");
    const text = readFileSync(share(3), "utf8");
    const header = /^tensorseal-root-share\/v1 .*$/m.exec(text)![0];
    const bytes = Buffer.from(shareB64(share(3)), "base64");
    bytes[0]! ^= 1;
    const line = `share=${bytes.toString("base64")}`;
    const sum = createHash("sha256").update(`${header}\n${line}`).digest("hex").slice(0, 16);
    writeFileSync(bad, `${header}\n${line}\nchecksum=${sum}\n`);
    const r = s.run(["root", "shares", "verify", share(1), bad]);
    assert.equal(r.status, 6, r.stderr);
    assert.match(r.stderr, /do not rebuild the current root/);
    assert.ok(!r.stderr.includes(bytes.toString("base64")));
    assert.match(untested()[0]!.message, /failed/);
    assert.equal(s.run(["root", "shares", "verify", share(1), share(3)]).status, 0);
  });

  test("shares of another keystore: exit 6 naming both keystores", () => {
    const t = sandbox();
    try {
      assert.equal(t.run(["init"]).status, 0);
      const d = join(t.dir, "x");
      mkdirSync(d);
      assert.equal(
        t.run(["root", "split", "--shares", "3", "--threshold", "2", "-o", d]).status,
        0,
      );
      const r = s.run(["root", "shares", "verify", share(1, d), share(2, d)]);
      assert.equal(r.status, 6);
      assert.match(r.stderr, /the shares belong to keystore [0-9a-f]{32}, not to the keystore in/);
      assertNoSecret(t, [share(1, d), share(2, d)], [r.stderr, readFileSync(record(), "utf8")]);
      // Their files under PATHS: no record can name them, so the file's age is the evidence.
      const past = new Date(Date.now() - 200 * DAY);
      utimesSync(share(1, d), past, past);
      const found = untested([d]).filter((f) => f.file === share(1, d));
      assert.equal(found.length, 1);
      assert.match(
        found[0]!.message,
        /was written 200 days ago and no test recovery of it can be recorded here/,
      );
      assert.match(found[0]!.evidence, /fallback evidence: the share is not of the keystore in/);
    } finally {
      t.cleanup();
    }
  });

  test("after root rotate the old split is no longer asked for, and its shares fail", () => {
    const newKey = join(s.dir, "root-2.key");
    const r = s.run(["root", "rotate", "-o", newKey]);
    assert.equal(r.status, 0, r.stderr);
    const env = { TENSORSEAL_ROOT_KEY_FILE: newKey };
    assert.deepEqual(of(doctorJson(s, [], env), "root.shares-untested"), []);
    const v = s.run(["root", "shares", "verify", share(1), share(2)], { env });
    assert.equal(v.status, 6);
    assert.match(v.stderr, /since rotated/);
    assert.ok(existsSync(record()));
  });
});
