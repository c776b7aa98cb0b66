import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { readHeader } from "../../src/format/message.js";
import { parseKekStanza } from "../../src/keys/kek.js";
import { CLI, type Sandbox, sandbox } from "./helpers.js";

const CLOCK = { TENSORSEAL_TEST_KNOBS: "1" };
const at = (iso: string) => ({ ...CLOCK, TENSORSEAL_NOW: iso });

function versions(path: string): string[] {
  return readHeader(readFileSync(path)).stanzas.map((s) => {
    const p = parseKekStanza(s);
    return `${p.name}:${p.version}`;
  });
}

/** Bytes after the header: the payload, which rewrap must never touch. */
function payload(path: string): Buffer {
  const b = readFileSync(path);
  return b.subarray(readHeader(b).headerLength);
}

function sealMany(s: Sandbox, dir: string, n: number, key = "default"): string[] {
  mkdirSync(dir, { recursive: true });
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const plain = join(dir, `f${i}.bin`);
    writeFileSync(plain, randomBytes(1000 + i));
    const r = s.run(["seal", plain, "-o", `${plain}.tseal`, "-k", key, "--chunk-size", "16KiB"]);
    assert.equal(r.status, 0, r.stderr);
    out.push(`${plain}.tseal`);
  }
  return out;
}

describe("tensorseal keys lifecycle (CLI)", () => {
  let s: Sandbox;
  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"], { env: at("2030-01-01T00:00:00Z") }).status, 0);
  });
  after(() => s.cleanup());

  test("min-decryption-version refuses with exit 9 and the fix; rewrap --to-latest fixes it", () => {
    const [f] = sealMany(s, join(s.dir, "a"), 1);
    assert.equal(s.run(["keys", "rotate", "default"]).status, 0);
    let r = s.run(["keys", "set", "default", "--min-decryption-version", "2"]);
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["open", f!, "-o", join(s.dir, "a.out")]);
    assert.equal(r.status, 9, r.stderr);
    assert.match(
      r.stderr,
      /version 1 of key default is below its min_decryption_version 2: rewrap it: `tensorseal rewrap --to-latest FILE`/,
    );
    r = s.run(["rewrap", "--to-latest", f!]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /rewrapped 1, already current 0, failed 0/);
    assert.equal(s.run(["open", f!, "-o", join(s.dir, "a.out")]).status, 0);
  });

  test("schedule-destroy, cancel, destroy after the waiting period: crypto-shredded", () => {
    assert.equal(s.run(["keys", "create", "shred"], { env: at("2030-01-01T00:00:00Z") }).status, 0);
    const [f] = sealMany(s, join(s.dir, "b"), 1, "shred");
    const t0 = at("2030-01-02T00:00:00Z");
    assert.equal(s.run(["keys", "rotate", "shred"], { env: t0 }).status, 0);
    assert.equal(s.run(["keys", "schedule-destroy", "shred", "2"], { env: t0 }).status, 2);
    let r = s.run(["keys", "schedule-destroy", "shred", "1"], { env: t0 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.toString(), /destroyed after 2030-01-09T00:00:00.000Z/);
    r = s.run(["open", f!, "-o", join(s.dir, "b.out")]);
    assert.equal(r.status, 9);
    assert.match(r.stderr, /scheduled for destruction/);
    assert.equal(s.run(["keys", "cancel-destroy", "shred", "1"], { env: t0 }).status, 0);
    assert.equal(s.run(["keys", "enable", "shred", "1"], { env: t0 }).status, 0);
    assert.equal(s.run(["open", f!, "-o", join(s.dir, "b.out")]).status, 0);
    assert.equal(
      s.run(["keys", "schedule-destroy", "shred", "1", "--days", "1"], { env: t0 }).status,
      0,
    );
    const material = JSON.parse(
      readFileSync(join(s.env.TENSORSEAL_HOME!, "keystore.json"), "utf8"),
    ).keys.find((k: { name: string }) => k.name === "shred").versions[0].material;
    // Not yet: purge before the date destroys nothing.
    r = s.run(["keys", "purge", "--json"], { env: at("2030-01-02T12:00:00Z") });
    assert.deepEqual(JSON.parse(r.stdout.toString()).destroyed, []);
    // Any mutation after the date destroys it (here: creating another key).
    assert.equal(s.run(["keys", "create", "x"], { env: at("2030-01-03T00:00:01Z") }).status, 0);
    const text = readFileSync(join(s.env.TENSORSEAL_HOME!, "keystore.json"), "utf8");
    assert.ok(!text.includes(material));
    for (const args of [
      ["open", f!, "-o", join(s.dir, "b2.out")],
      ["verify", f!],
      ["rewrap", "--to-latest", f!],
      ["inspect", f!, "--verify"],
    ]) {
      r = s.run(args);
      assert.notEqual(r.status, 0, args.join(" "));
      assert.match(
        r.stderr,
        /version 1 of key shred was destroyed on 2030-01-03T00:00:01.000Z: files wrapped only under it can never be opened again/,
        args.join(" "),
      );
    }
    assert.equal(existsSync(join(s.dir, "b2.out")), false);
  });

  test("keys set --rotation-period and rotate-due with the test clock", () => {
    assert.equal(s.run(["keys", "create", "auto"], { env: at("2030-01-01T00:00:00Z") }).status, 0);
    let r = s.run(["keys", "set", "auto", "--rotation-period", "90d", "--json"]);
    assert.equal(JSON.parse(r.stdout.toString()).rotationPeriod, 90 * 86400);
    r = s.run(["keys", "rotate-due", "--json"], { env: at("2030-03-01T00:00:00Z") });
    assert.deepEqual(JSON.parse(r.stdout.toString()).rotated, []);
    r = s.run(["keys", "rotate-due", "--json"], { env: at("2030-04-01T00:00:00Z") });
    assert.deepEqual(JSON.parse(r.stdout.toString()).rotated, ["auto"]);
    // The clock env is ignored without TENSORSEAL_TEST_KNOBS=1.
    r = s.run(["keys", "show", "auto", "--json"]);
    assert.equal(JSON.parse(r.stdout.toString()).versions[1].created, "2030-04-01T00:00:00.000Z");
  });

  test("wrap counters: one seal per invocation counts exactly; forced rotation at the limit", () => {
    assert.equal(s.run(["keys", "create", "counted"]).status, 0);
    const env = { ...CLOCK, TENSORSEAL_WRAP_LIMIT: "3" };
    const dir = join(s.dir, "w");
    mkdirSync(dir);
    for (let i = 0; i < 4; i++) {
      writeFileSync(join(dir, `${i}`), "x");
      const r = s.run(["seal", join(dir, `${i}`), "-k", "counted"], { env });
      assert.equal(r.status, 0, r.stderr);
    }
    const k = JSON.parse(s.run(["keys", "show", "counted", "--json"]).stdout.toString());
    assert.deepEqual(
      k.versions.map((v: { wraps: number }) => v.wraps),
      [3, 1],
    );
    assert.deepEqual(versions(join(dir, "3.tseal")), ["counted:2"]);
  });
});

describe("tensorseal rewrap --to-latest campaigns (CLI)", () => {
  let s: Sandbox;
  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
  });
  after(() => s.cleanup());

  test("directories, globs and manifests; headers only (payload bytes unchanged); summary and --json", () => {
    const files = sealMany(s, join(s.dir, "m", "deep"), 6);
    const payloads = files.map(payload);
    assert.equal(s.run(["keys", "rotate", "default"]).status, 0);
    writeFileSync(join(s.dir, "list.txt"), `# manifest\nm/deep/f4.bin.tseal\n\n${files[5]}\n`);
    let r = s.run(["rewrap", "--to-latest", "--manifest", join(s.dir, "list.txt"), "--json"]);
    assert.equal(r.status, 0, r.stderr);
    let j = JSON.parse(r.stdout.toString());
    assert.deepEqual([j.rewrapped, j.current, j.failed], [2, 0, 0]);
    r = s.run(["rewrap", "--to-latest", join(s.dir, "m/**/f[0-1].bin.tseal")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /rewrapped 2, already current 0, failed 0/);
    r = s.run(["rewrap", "--to-latest", join(s.dir, "m"), "--json"]);
    j = JSON.parse(r.stdout.toString());
    assert.deepEqual([j.rewrapped, j.current, j.failed], [2, 4, 0]);
    assert.equal(j.headerBytesWritten, 2 * 2 * 8192);
    for (const [i, f] of files.entries()) {
      assert.deepEqual(versions(f), ["default:2"]);
      assert.ok(payload(f).equals(payloads[i]!), `payload of ${f} unchanged`);
    }
    assert.equal(existsSync(join(s.dir, ".tensorseal-rewrap-journal.jsonl")), false);
    // A broken file is reported, the others done, the journal kept; exit 1.
    writeFileSync(join(s.dir, "m", "broken.tseal"), "not sealed");
    assert.equal(s.run(["keys", "rotate", "default"]).status, 0);
    r = s.run(["rewrap", "--to-latest", join(s.dir, "m")]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /FAILED .*broken.tseal/);
    assert.match(r.stderr, /rewrapped 6, already current 0, failed 1/);
    assert.ok(existsSync(join(s.dir, ".tensorseal-rewrap-journal.jsonl")));
    r = s.run(["rewrap", "--to-latest", join(s.dir, "m")]);
    assert.match(r.stderr, /rewrapped 6, already current 0, failed 1 \(6 from the journal/);
  });

  test("crash safety: SIGKILL a campaign at random moments 20 times; rerun; every file opens and is current", async () => {
    const dir = join(s.dir, "crash");
    const files = sealMany(s, dir, 60);
    const payloads = files.map(payload);
    const journal = join(s.dir, "crash-journal.jsonl");
    const rewrap = () =>
      spawn(
        process.execPath,
        [CLI, "rewrap", "--to-latest", dir, "--journal", journal, "--concurrency", "4"],
        { env: s.env, cwd: s.dir, stdio: "ignore" },
      );
    // Kill moments fall inside a whole campaign's run time, measured here: a fixed range went
    // stale whenever start-up or the machine's load changed, and most runs finished first.
    assert.equal(s.run(["keys", "rotate", "default"]).status, 0);
    const t0 = Date.now();
    assert.equal((await once(rewrap(), "exit"))[0], 0);
    const whole = Date.now() - t0;
    let kills = 0;
    let rounds = 0;
    // Until 20 runs were killed mid-way (a run that finishes first counts as a round only).
    while (kills < 20) {
      assert.ok(rounds++ < 80, `only ${kills} kills in 80 rounds (a whole run: ${whole} ms)`);
      // Every round has the whole campaign to do (or finish, after a killed one).
      assert.equal(s.run(["keys", "rotate", "default"]).status, 0);
      const child = rewrap();
      const t = setTimeout(() => child.kill("SIGKILL"), Math.floor(Math.random() * whole * 0.9));
      const [code] = await once(child, "exit");
      clearTimeout(t);
      if (code === null) kills++;
      else assert.equal(code, 0, `round ${rounds} exited ${code}`);
    }
    const r = s.run(["rewrap", "--to-latest", dir, "--journal", journal, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout.toString()).failed, 0);
    const primary = JSON.parse(
      s.run(["keys", "show", "default", "--json"]).stdout.toString(),
    ).primaryVersion;
    for (const [i, f] of files.entries()) {
      assert.deepEqual(versions(f), [`default:${primary}`], f);
      assert.ok(payload(f).equals(payloads[i]!));
    }
    const v = s.run(["verify", ...files]);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(existsSync(journal), false);
  });
});

describe("tensorseal root split / recover / rotate (CLI)", () => {
  let s: Sandbox;
  let sealed: string;
  const pass = { TENSORSEAL_ROOT_KEY_FILE: "", TENSORSEAL_KEYSTORE_PASSPHRASE: "first pass" };
  before(() => {
    s = sandbox();
    Object.assign(s.env, pass); // a passphrase keystore: recovery re-seals it
    assert.equal(s.run(["init"]).status, 0);
    sealed = sealMany(s, join(s.dir, "r"), 1)[0]!;
  });
  after(() => s.cleanup());

  const shareDir = () => join(s.dir, "shares");

  test("split writes N private share files; M of them recover under a new passphrase", () => {
    mkdirSync(shareDir());
    let r = s.run(["root", "split", "--shares", "5", "--threshold", "3", "-o", shareDir()], {
      env: pass,
    });
    assert.equal(r.status, 0, r.stderr);
    const files = readdirSync(shareDir())
      .map((f) => join(shareDir(), f))
      .sort();
    assert.equal(files.length, 5);
    for (const f of files) {
      assert.equal(statSync(f).mode & 0o777, 0o600);
      assert.match(
        readFileSync(f, "utf8"),
        /tensorseal-root-share\/v1 keystore=[0-9a-f]{32} .*index=\d shares=5 threshold=3/,
      );
    }
    const env = { ...pass, TENSORSEAL_NEW_KEYSTORE_PASSPHRASE: "second pass" };
    const ks = join(s.env.TENSORSEAL_HOME!, "keystore.json");
    const before = readFileSync(ks);
    // Fewer than the threshold: refused, nothing written.
    r = s.run(["root", "recover", files[0]!, files[3]!], { env });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /2 share\(s\) given, but this split needs 3 of 5/);
    assert.ok(readFileSync(ks).equals(before));
    // A mistyped share is detected by its checksum.
    const text = readFileSync(files[1]!, "utf8");
    const at = text.indexOf("share=") + 10;
    const typo = join(s.dir, "typo.txt");
    writeFileSync(typo, text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1));
    r = s.run(["root", "recover", files[0]!, typo, files[4]!], { env });
    assert.equal(r.status, 4);
    assert.match(r.stderr, /typo.txt is not a valid root key share \(checksum mismatch/);
    assert.ok(readFileSync(ks).equals(before));
    // Three good shares: recovered, re-sealed under the new passphrase.
    r = s.run(["root", "recover", files[4]!, files[0]!, files[2]!], { env });
    assert.equal(r.status, 0, r.stderr);
    const open2 = { ...pass, TENSORSEAL_KEYSTORE_PASSPHRASE: "second pass" };
    assert.equal(s.run(["open", sealed, "-o", join(s.dir, "r1.out")], { env: open2 }).status, 0);
    assert.equal(s.run(["open", sealed, "-o", join(s.dir, "r2.out")], { env: pass }).status, 6);
  });

  test("recover -o writes a root key file; root rotate makes old shares useless", () => {
    const files = readdirSync(shareDir())
      .map((f) => join(shareDir(), f))
      .sort();
    const keyFile = join(s.dir, "recovered.key");
    const env2 = { ...pass, TENSORSEAL_KEYSTORE_PASSPHRASE: "second pass" };
    let r = s.run(["root", "recover", "-o", keyFile, ...files.slice(0, 3)], { env: env2 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const byFile = { TENSORSEAL_ROOT_KEY_FILE: keyFile, TENSORSEAL_KEYSTORE_PASSPHRASE: "" };
    assert.equal(s.run(["open", sealed, "-o", join(s.dir, "r3.out")], { env: byFile }).status, 0);
    const sealedBytes = readFileSync(sealed);
    const newKey = join(s.dir, "new.key");
    r = s.run(["root", "rotate", "-o", newKey], { env: byFile });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /earlier root shares no longer work/);
    assert.ok(readFileSync(sealed).equals(sealedBytes), "artifacts untouched");
    const byNew = { TENSORSEAL_ROOT_KEY_FILE: newKey, TENSORSEAL_KEYSTORE_PASSPHRASE: "" };
    assert.equal(s.run(["open", sealed, "-o", join(s.dir, "r4.out")], { env: byNew }).status, 0);
    assert.equal(s.run(["keys", "list"], { env: byFile }).status, 6);
    r = s.run(["root", "recover", "-o", join(s.dir, "again.key"), ...files.slice(0, 3)], {
      env: byNew,
    });
    assert.equal(r.status, 6);
    assert.match(r.stderr, /recovered root key does not match the keystore .*nothing was written/);
    assert.equal(existsSync(join(s.dir, "again.key")), false);
    chmodSync(newKey, 0o600);
  });
});

describe("tensorseal seal with .tensorseal.yaml creation rules (CLI)", () => {
  let s: Sandbox;
  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    assert.equal(s.run(["keys", "create", "prod"]).status, 0);
    mkdirSync(join(s.dir, "repo", "models", "prod", "sub"), { recursive: true });
    writeFileSync(
      join(s.dir, "repo", ".tensorseal.yaml"),
      [
        "creation_rules:",
        "  - path_regex: '^models/prod/.*\\.bin$'",
        "    key: prod",
        "    context: { tenant: acme, env: prod }",
        "    labels: { team: ml }",
        "    chunk_size: 64KiB",
        "  - path_regex: '.*'",
        "    key: default",
        "",
      ].join("\n"),
    );
  });
  after(() => s.cleanup());

  const inspect = (p: string) =>
    JSON.parse(s.run(["inspect", p, "--json"]).stdout.toString()) as {
      stanzas: string[];
      context: Record<string, string>;
      labels: Record<string, string>;
      chunkSize: number;
    };
  const runIn = (cwd: string, args: string[]) => spawnCli(s, cwd, args);

  test("first matching rule wins, found from a subdirectory; no flags needed", () => {
    const sub = join(s.dir, "repo", "models", "prod", "sub");
    writeFileSync(join(sub, "w.bin"), randomBytes(5000));
    let r = runIn(sub, ["seal", "w.bin"]);
    assert.equal(r.status, 0, r.stderr);
    const info = inspect(join(sub, "w.bin.tseal"));
    assert.deepEqual(info.stanzas, ["kek prod version 1"]);
    assert.deepEqual(info.context, { env: "prod", tenant: "acme" });
    assert.deepEqual(info.labels, { team: "ml" });
    assert.equal(info.chunkSize, 65536);
    writeFileSync(join(s.dir, "repo", "notes.txt"), "hi");
    r = runIn(join(s.dir, "repo"), ["seal", "notes.txt"]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(inspect(join(s.dir, "repo", "notes.txt.tseal")).stanzas, [
      "kek default version 1",
    ]);
  });

  test("explicit flags override the rule", () => {
    const dir = join(s.dir, "repo", "models", "prod");
    writeFileSync(join(dir, "o.bin"), randomBytes(100));
    const r = runIn(dir, [
      "seal",
      "o.bin",
      "-k",
      "default",
      "-c",
      "tenant=other",
      "-l",
      "team=x",
      "--chunk-size",
      "16KiB",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const info = inspect(join(dir, "o.bin.tseal"));
    assert.deepEqual(info.stanzas, ["kek default version 1"]);
    assert.deepEqual(info.context, { env: "prod", tenant: "other" });
    assert.deepEqual(info.labels, { team: "x" });
    assert.equal(info.chunkSize, 16384);
  });

  test("strict validation: an unknown key is an error naming the file, line and key", () => {
    const bad = join(s.dir, "bad");
    mkdirSync(bad);
    writeFileSync(
      join(bad, ".tensorseal.yaml"),
      "creation_rules:\n  - path_regex: '.*'\n    kee: prod\n",
    );
    writeFileSync(join(bad, "x.bin"), "x");
    const r = runIn(bad, ["seal", "x.bin"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /\.tensorseal\.yaml:3: unknown key "kee" in a creation rule/);
    writeFileSync(join(bad, ".tensorseal.yaml"), "creation_rules:\n  - path_regex: '('\n");
    assert.match(
      runIn(bad, ["seal", "x.bin"]).stderr,
      /:2: path_regex is not a valid regular expression/,
    );
    writeFileSync(join(bad, ".tensorseal.yaml"), "rules: []\n");
    assert.match(runIn(bad, ["seal", "x.bin"]).stderr, /:1: unknown key "rules"/);
  });
});

function spawnCli(s: Sandbox, cwd: string, args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: s.env, cwd });
  return { status: r.status ?? -1, stderr: r.stderr.toString() };
}
