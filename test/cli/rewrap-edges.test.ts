/**
 * rewrap at its edges: releasing a file key to a new recipient follows `open`'s version rules;
 * campaigns find sealed files by their magic bytes and say what they skipped; a leftover header
 * slot is work for a campaign and a warning (exit 10) for verify and inspect.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { selfStamp } from "../../src/engine/process-stamp.js";
import { parseHeader, slotOffset } from "../../src/format/header.js";
import { parseKekStanza } from "../../src/keys/kek.js";
import { CLI, type Sandbox, sandbox } from "./helpers.js";

function keygen(s: Sandbox, name: string): string {
  const r = s.run(["keygen", "-o", join(s.dir, `${name}.key`), "--json"]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.toString()).recipient;
}

function seal(s: Sandbox, out: string, args: string[] = []): string {
  const plain = join(s.dir, `${randomBytes(4).toString("hex")}.bin`);
  writeFileSync(plain, randomBytes(3000));
  const r = s.run(["seal", plain, "-o", out, ...args]);
  assert.equal(r.status, 0, r.stderr);
  return out;
}

const versions = (path: string) =>
  parseHeader(readFileSync(path)).stanzas.map((st) => parseKekStanza(st).version);

describe("rewrap --add-recipient follows open's key version rules", () => {
  let s: Sandbox;
  let outsider: string;
  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    outsider = keygen(s, "outsider");
  });
  after(() => s.cleanup());

  test("a version below min_decryption_version releases the file key to nobody new (exit 9, nothing written)", () => {
    const f = seal(s, join(s.dir, "old.tseal"));
    assert.equal(s.run(["keys", "rotate", "default"]).status, 0);
    assert.equal(s.run(["keys", "set", "default", "--min-decryption-version", "2"]).status, 0);
    const before = readFileSync(f);
    for (const extra of [[], ["--to-latest"]]) {
      const r = s.run(["rewrap", f, "--add-recipient", outsider, ...extra]);
      assert.equal(r.status, 9, r.stderr);
      assert.match(r.stderr, /below its min_decryption_version 2/);
      assert.ok(readFileSync(f).equals(before), "nothing written");
    }
    // open refuses the same file for the same reason.
    assert.equal(s.run(["open", f, "-o", join(s.dir, "o.bin")]).status, 9);
    // --to-latest alone only moves the key to its own newer version: allowed.
    const r = s.run(["rewrap", "--to-latest", f]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(versions(f), [2]);
    // Now v2 opens it, and adding a recipient is an ordinary decryption.
    assert.equal(s.run(["rewrap", f, "--add-recipient", outsider]).status, 0);
  });

  test("a disabled version neither adds a recipient nor moves to the latest (exit 9)", () => {
    const f = seal(s, join(s.dir, "dis.tseal"), ["-k", "default"]);
    const v = versions(f)[0]!;
    assert.equal(s.run(["keys", "rotate", "default"]).status, 0);
    assert.equal(s.run(["keys", "disable", "default", String(v)]).status, 0);
    const before = readFileSync(f);
    for (const args of [["--add-recipient", outsider], ["--to-latest"]]) {
      const r = s.run(["rewrap", f, ...args]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /is disabled/);
      assert.ok(readFileSync(f).equals(before));
    }
  });
});

describe("rewrap replaces a file's only recipient in one header rewrite", () => {
  let s: Sandbox;
  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
  });
  after(() => s.cleanup());

  test("--add-recipient with --remove-recipient of the only one: the file ends with the new one", () => {
    const pass = join(s.dir, "pass.txt");
    writeFileSync(pass, "correct horse battery staple\n");
    const f = seal(s, join(s.dir, "pw.tseal"), ["--passphrase-file", pass]);
    const types = () => parseHeader(readFileSync(f)).stanzas.map((st) => st.type);
    assert.deepEqual(types(), ["passphrase"]);
    const r = s.run([
      "rewrap",
      f,
      "-a",
      "kek:default",
      "-d",
      "passphrase",
      "--passphrase-file",
      pass,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(types(), ["kek"]);
    assert.equal(s.run(["open", f, "-o", join(s.dir, "pw.out")]).status, 0);
    // Removing the only recipient without adding one is still refused, and changes nothing.
    const before = readFileSync(f);
    const refused = s.run(["rewrap", f, "-d", "kek:default"]);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /would leave the file with none/);
    assert.ok(readFileSync(f).equals(before));
  });
});

const TEMP_NAME = "shard.tseal.tseal-tmp";

describe("rewrap campaigns: sealed files by magic bytes, skips reported", () => {
  let s: Sandbox;
  let dir: string;
  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    dir = join(s.dir, "ckpt");
    mkdirSync(join(dir, "shards"), { recursive: true });
    seal(s, join(dir, "shards", "__0_0.distcp"));
    seal(s, join(dir, ".metadata"));
    seal(s, join(dir, "x25519-only.tseal"), ["-r", keygen(s, "someone")]);
    writeFileSync(join(dir, "config.json"), "{}");
    symlinkSync(join(dir, "shards", "__0_0.distcp"), join(dir, "link.tseal"));
    assert.equal(spawnSync("mkfifo", [join(dir, "pipe")]).status, 0);
    // Another (live) run's sealed output in progress: it has the magic, but is not a file to
    // work on (the stamp is this test process's, so nothing removes it as a dead writer's).
    const me = selfStamp()!;
    copyFileSync(
      join(dir, ".metadata"),
      join(dir, `${TEMP_NAME}-${me.ns}-${me.pid}-${me.start}-${"ab".repeat(8)}`),
    );
    assert.equal(s.run(["keys", "rotate", "default"]).status, 0);
  });
  after(() => s.cleanup());

  test("DCP shards and .metadata are found and rewrapped; the rest is listed with why", () => {
    let r = s.run(["rewrap", "--to-latest", dir, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout.toString());
    assert.deepEqual([j.rewrapped, j.current, j.failed, j.skipped], [2, 0, 0, 5]);
    const why = Object.fromEntries(
      j.skippedFiles.map((f: { file: string; reason: string }) => [
        f.file.slice(dir.length + 1),
        f.reason,
      ]),
    );
    assert.match(why["config.json"], /not sealed/);
    assert.match(why["link.tseal"], /symbolic link/);
    assert.match(why.pipe, /not a regular file/);
    const temp = Object.keys(why).find((f) => f.startsWith(TEMP_NAME));
    assert.match(why[temp!], /a TensorSeal temporary file/);
    assert.match(why["x25519-only.tseal"], /no stanza of this keystore's keys \(stanzas: x25519\)/);
    assert.deepEqual(versions(join(dir, "shards", "__0_0.distcp")), [2]);
    assert.deepEqual(versions(join(dir, ".metadata")), [2]);
    // A name that would drive the terminal is printed escaped.
    const evil = join(dir, "evil\x1b[2J.txt");
    writeFileSync(evil, "x");
    r = s.run(["rewrap", "--to-latest", dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /skipped .*config\.json: not sealed/);
    assert.ok(r.stderr.includes("evil\\x1b[2J.txt: not sealed"), r.stderr);
    assert.doesNotMatch(r.stderr, /\x1b/);
    assert.match(r.stderr, /rewrapped 0, already current 2, failed 0; skipped 6/);
    rmSync(evil);
  });

  test("an unreadable file is skipped and named", () => {
    const f = join(dir, "secret.bin");
    writeFileSync(f, "x");
    chmodSync(f, 0);
    try {
      // Root reads mode-0 files; without the override capabilities it cannot either.
      const asRoot = process.getuid?.() === 0;
      const r = spawnSync(
        asRoot ? "setpriv" : process.execPath,
        [
          ...(asRoot ? ["--bounding-set=-dac_override,-dac_read_search", process.execPath] : []),
          CLI,
          ...["rewrap", "--to-latest", dir, "--json"],
        ],
        { env: s.env, cwd: s.dir, encoding: "utf8" },
      );
      assert.equal(r.status, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      const entry = j.skippedFiles.find((e: { file: string }) => e.file === f);
      assert.match(entry.reason, /unreadable \(EACCES\)/);
    } finally {
      chmodSync(f, 0o600);
    }
  });

  test("an empty directory is 0 files, not a usage error; no path at all is", () => {
    const empty = join(s.dir, "empty");
    mkdirSync(empty);
    let r = s.run(["rewrap", "--to-latest", empty]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /0 files: rewrapped 0, already current 0, failed 0/);
    r = s.run(["rewrap", empty, "--add-recipient", keygen(s, "nobody")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /no sealed file found/);
    r = s.run(["rewrap", "--to-latest"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /no file given/);
  });
});

describe("a leftover header slot: verify and inspect warn, a campaign clears it", () => {
  let s: Sandbox;
  let f: string;
  let clean: string;
  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    const removed = keygen(s, "removed");
    f = seal(s, join(s.dir, "g.tseal"), ["-k", "default", "-r", removed]);
    clean = seal(s, join(s.dir, "clean.tseal"));
    // A removal killed after its new slot was written, before the old one was zeroed.
    const h = parseHeader(readFileSync(f));
    const at = slotOffset(h, h.activeSlot);
    const old = Buffer.from(readFileSync(f).subarray(at, at + h.slotCapacity));
    assert.equal(s.run(["rewrap", f, "--remove-recipient", removed]).status, 0);
    const bytes = readFileSync(f);
    old.copy(bytes, at);
    writeFileSync(f, bytes);
  });
  after(() => s.cleanup());

  test("verify: STALE and exit 10 (a failing file's own code wins); --json names the slot", () => {
    let r = s.run(["verify", f]);
    assert.equal(r.status, 10, r.stderr);
    assert.match(
      r.stdout.toString(),
      /^STALE .*g\.tseal: authentic, but the other header slot still holds generation 1/,
    );
    r = s.run(["verify", clean, f, "--json"]);
    assert.equal(r.status, 10);
    const j = JSON.parse(r.stdout.toString());
    assert.deepEqual(
      j.map((v: { ok: boolean; leftoverSlot?: string }) => [v.ok, v.leftoverSlot ?? null]),
      [
        [true, null],
        [true, "stale"],
      ],
    );
    writeFileSync(join(s.dir, "bad.tseal"), "not sealed");
    assert.equal(s.run(["verify", clean, f, join(s.dir, "bad.tseal")]).status, 3);
    const tampered = readFileSync(clean);
    tampered[tampered.length - 20]! ^= 1;
    writeFileSync(join(s.dir, "tampered.tseal"), tampered);
    assert.equal(s.run(["verify", f, join(s.dir, "tampered.tseal")]).status, 5);
  });

  test("open warns about the leftover slot and still opens; a clean file gets no warning", () => {
    let r = s.run(["open", f, "-o", join(s.dir, "g.out")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: .*g\.tseal: the other header slot still holds generation 1/);
    r = s.run(["open", clean, "-o", join(s.dir, "clean.out")]);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /warning/);
  });

  test("inspect warns and --json says which kind of leftover", () => {
    let r = s.run(["inspect", f]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.toString(), /WARNING: +the other header slot still holds generation 1/);
    r = s.run(["inspect", f, "--json"]);
    assert.equal(JSON.parse(r.stdout.toString()).leftoverSlot, "stale");
    assert.equal(
      JSON.parse(s.run(["inspect", clean, "--json"]).stdout.toString()).leftoverSlot,
      null,
    );
  });

  test("--to-latest counts a leftover slot as work even when the stanzas are current", () => {
    let r = s.run(["rewrap", "--to-latest", f, clean, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout.toString());
    assert.deepEqual([j.rewrapped, j.cleared, j.current, j.failed], [0, 1, 1, 0]);
    assert.match(r.stderr, /g\.tseal: cleared a stale header slot/);
    assert.equal(parseHeader(readFileSync(f)).inactiveSlot.kind, "empty");
    assert.equal(s.run(["verify", f]).status, 0);
    r = s.run(["rewrap", "--to-latest", f, "--json"]);
    assert.equal(JSON.parse(r.stdout.toString()).current, 1);
  });
});
