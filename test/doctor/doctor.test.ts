/**
 * `tensorseal doctor` against real keystores and sealed files made by the CLI: each check
 * is shown a bad state and must report it (rule id, severity, file), and the clean state of
 * the same setup must report nothing. Exit codes follow --fail-on.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { inspectFile } from "../../src/engine/index.js";
import { MAGIC, slotOffset } from "../../src/format/header.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { doctorJson, notRuntime, of, sealOne } from "./helpers.js";

/** The keystore's clock (TENSORSEAL_NOW, a test knob); `init` stamps keys with the real time. */
const START = Date.now();
const plusDays = (d: number) => new Date(START + d * 86400_000).toISOString();
const T0 = plusDays(0);
const at = (iso: string) => ({ TENSORSEAL_NOW: iso });

describe("tensorseal doctor", () => {
  let s: Sandbox;
  before(() => {
    s = sandbox();
    const r = s.run(["init"], { env: at(T0) });
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => s.cleanup());

  test("a clean keystore and sealed files: no findings, exit 0, in every format", () => {
    const dir = join(s.dir, "clean");
    sealOne(s, dir, "a", ["-k", "default"], at(T0));
    const r = s.run(["doctor", dir], { env: at(T0) });
    assert.equal(r.status, 0, r.stderr);
    const j = doctorJson(s, [dir], at(T0));
    // On a Node.js past its end of life (CI's Node 20) that warning is the one finding
    // (runtime.test.ts); the keystore and files have none.
    const runtime = of(j, "runtime.end-of-life");
    assert.match(
      r.stdout.toString(),
      runtime.length === 0
        ? /^no findings \(1 sealed file\(s\) checked\)\n$/
        : /^WARNING runtime\.end-of-life\n(?: {2}.*\n){3}1 finding\(s\): 1 warning \(1 sealed file\(s\) checked\)\n$/,
    );
    assert.deepEqual(
      j.findings.filter((f) => notRuntime(f.id)),
      [],
    );
    assert.equal(j.filesChecked, 1);
    assert.equal(j.keystoreVerified, true);
    const sarif = JSON.parse(
      s.run(["doctor", "--format", "sarif", dir], { env: at(T0) }).stdout.toString(),
    );
    assert.deepEqual(
      sarif.runs[0].results.map((x: { ruleId: string }) => x.ruleId),
      runtime.map((f) => f.id),
    );
  });

  test("key.rotation-overdue: its own period is a warning, the config default a note", () => {
    const later = at(plusDays(2));
    // Clean: a fresh key, measured against the 365-day default.
    assert.deepEqual(of(doctorJson(s, [], later), "key.rotation-overdue"), []);
    // Its own period of one day, two days on: a warning naming the key and the fix.
    assert.equal(s.run(["keys", "create", "short"], { env: at(T0) }).status, 0);
    assert.equal(s.run(["keys", "set", "short", "--rotation-period", "1d"]).status, 0);
    let f = of(doctorJson(s, [], later), "key.rotation-overdue");
    assert.equal(f.length, 1);
    assert.equal(f[0]!.severity, "warning");
    assert.match(f[0]!.message, /^key short: primary version 1 is 2 days old/);
    assert.match(f[0]!.fix, /tensorseal keys rotate short/);
    assert.equal(f[0]!.file, join(s.dir, "home", "keystore.json"));
    // The project's default (.tensorseal.yaml) for keys without a period: a note for `default`.
    writeFileSync(join(s.dir, ".tensorseal.yaml"), "doctor:\n  rotation_period: 1d\n");
    try {
      f = of(doctorJson(s, [], later), "key.rotation-overdue");
      assert.deepEqual(
        f.map((x) => [x.severity, x.message.split(":")[0]]),
        [
          ["warning", "key short"],
          ["note", "key default"],
        ],
      );
      writeFileSync(join(s.dir, ".tensorseal.yaml"), "doctor:\n  rotation_period: none\n");
      f = of(doctorJson(s, [], later), "key.rotation-overdue");
      assert.deepEqual(
        f.map((x) => x.message.split(":")[0]),
        ["key short"],
      );
      writeFileSync(join(s.dir, ".tensorseal.yaml"), "doctor:\n  rotation_period: soon\n");
      const bad = s.run(["doctor"], { env: later });
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /\.tensorseal\.yaml:2: doctor\.rotation_period must be a duration/);
    } finally {
      writeFileSync(join(s.dir, ".tensorseal.yaml"), "creation_rules: []\n");
    }
    // Rotated: clean again.
    assert.equal(s.run(["keys", "rotate", "short"], { env: later }).status, 0);
    assert.deepEqual(of(doctorJson(s, [], later), "key.rotation-overdue"), []);
  });

  test("file versions: not latest (note), below minimum and retired (error), destroyed (critical)", () => {
    assert.equal(s.run(["keys", "create", "life"], { env: at(T0) }).status, 0);
    const dir = join(s.dir, "life");
    const only = sealOne(s, dir, "only", ["-k", "life"], at(T0));
    // A file the destroyed version cannot strand: it also has a passphrase stanza.
    const both = sealOne(s, dir, "both", ["-k", "life", "--passphrase"], {
      ...at(T0),
      TENSORSEAL_PASSPHRASE: "a passphrase for the test",
      TENSORSEAL_SCRYPT_WORK_FACTOR: "18",
    });
    // Clean: v1 is the primary.
    let j = doctorJson(s, [dir], at(T0));
    assert.deepEqual(
      j.findings.filter((f) => f.id.startsWith("file.")),
      [],
    );
    assert.equal(j.filesChecked, 2);
    const one = (id: string) =>
      of(doctorJson(s, [dir], at(T0)), id).map((f) => [f.severity, f.file]);

    assert.equal(s.run(["keys", "rotate", "life"], { env: at(T0) }).status, 0);
    assert.deepEqual(one("file.version-not-latest"), [
      ["note", both],
      ["note", only],
    ]);

    assert.equal(s.run(["keys", "set", "life", "--min-decryption-version", "2"]).status, 0);
    assert.deepEqual(one("file.version-below-minimum"), [
      ["error", both],
      ["error", only],
    ]);
    assert.equal(s.run(["keys", "set", "life", "--min-decryption-version", "1"]).status, 0);

    assert.equal(s.run(["keys", "disable", "life", "1"]).status, 0);
    j = doctorJson(s, [dir], at(T0));
    const retired = of(j, "file.version-retired");
    assert.deepEqual(
      retired.map((f) => [f.severity, f.file]),
      [
        ["error", both],
        ["error", only],
      ],
    );
    assert.match(retired[0]!.message, /kek life version 1, which is disabled$/);
    assert.match(retired[0]!.fix, /tensorseal keys enable life 1, then tensorseal rewrap/);

    assert.equal(
      s.run(["keys", "schedule-destroy", "life", "1", "--days", "1"], { env: at(T0) }).status,
      0,
    );
    assert.match(
      of(doctorJson(s, [dir], at(T0)), "file.version-retired")[0]!.message,
      new RegExp(`scheduled for destruction \\(destroyed after ${plusDays(1).slice(0, 10)}`),
    );
    const purgeAt = at(plusDays(4));
    assert.equal(s.run(["keys", "purge"], { env: purgeAt }).status, 0);
    j = doctorJson(s, [dir], purgeAt);
    // Critical only where no other stanza can open the file.
    assert.deepEqual(
      of(j, "file.version-destroyed").map((f) => [f.severity, f.file]),
      [
        ["critical", only],
        ["error", both],
      ],
    );
    assert.equal(j.worst, "critical");
    // The exit code: 20 + the worst severity's rank once --fail-on is reached.
    assert.equal(s.run(["doctor", dir], { env: purgeAt }).status, 23);
    assert.equal(s.run(["doctor", "--fail-on", "none", dir], { env: purgeAt }).status, 0);
    // Moved to the latest version: clean again (the stranded file stays stranded).
    assert.equal(
      s.run(["rewrap", "--to-latest", "--passphrase", both], {
        env: { ...purgeAt, TENSORSEAL_PASSPHRASE: "a passphrase for the test" },
      }).status,
      0,
    );
    assert.deepEqual(
      doctorJson(s, [both], purgeAt).findings.filter((f) => f.id.startsWith("file.version")),
      [],
    );
  });

  test("file.leftover-slot: an interrupted rewrap's older slot is found; a rewrap clears it", async () => {
    const dir = join(s.dir, "slot");
    const id = join(s.dir, "slot.identity");
    const k = s.run(["keygen", "-o", id]);
    assert.equal(k.status, 0, k.stderr);
    const recipient =
      k.stderr.match(/tseal1[0-9a-z]+/)?.[0] ??
      readFileSync(id, "utf8").match(/tseal1[0-9a-z]+/)![0];
    const file = sealOne(s, dir, "x", ["-k", "default", "-r", recipient], at(T0));
    assert.deepEqual(of(doctorJson(s, [dir], at(T0)), "file.leftover-slot"), []);
    // Rewrap without the x25519 recipient, then put the old slot back: as if killed before
    // the old slot was zeroed.
    const h = await inspectFile(file);
    const off = slotOffset(h, h.activeSlot);
    const oldSlot = Buffer.from(readFileSync(file).subarray(off, off + h.slotCapacity));
    const rw = s.run(["rewrap", file, "-d", recipient], { env: at(T0) });
    assert.equal(rw.status, 0, rw.stderr);
    const bytes = readFileSync(file);
    oldSlot.copy(bytes, off);
    writeFileSync(file, bytes);
    const f = of(doctorJson(s, [dir], at(T0)), "file.leftover-slot");
    assert.equal(f.length, 1);
    assert.equal(f[0]!.severity, "warning");
    assert.equal(f[0]!.file, file);
    assert.match(f[0]!.evidence, /inactive slot holds generation \d+ \(2 stanza\(s\)\)/);
    // verify agrees (exit 10); the fix clears it.
    assert.equal(s.run(["verify", file]).status, 10);
    assert.equal(s.run(["rewrap", "--to-latest", file], { env: at(T0) }).status, 0);
    assert.deepEqual(of(doctorJson(s, [dir], at(T0)), "file.leftover-slot"), []);
  });

  test("weak scrypt: a passphrase stanza and a keystore passphrase below 2^18", () => {
    const dir = join(s.dir, "weak");
    const file = sealOne(s, dir, "p", ["--passphrase"], {
      TENSORSEAL_PASSPHRASE: "pw for the test",
      TENSORSEAL_SCRYPT_WORK_FACTOR: "10",
    });
    const f = of(doctorJson(s, [dir], at(T0)), "file.weak-passphrase");
    assert.deepEqual(
      f.map((x) => [x.severity, x.file, x.evidence]),
      [["warning", file, "passphrase stanza, logN 10"]],
    );
    // The clean state (2^18) is the `both` file of the version test: no weak-passphrase there.
    assert.deepEqual(of(doctorJson(s, [join(s.dir, "life")], at(T0)), "file.weak-passphrase"), []);

    // A keystore whose root is sealed by a passphrase at 2^10, read without unlocking it.
    const home = join(s.dir, "pwhome");
    const env = {
      TENSORSEAL_HOME: home,
      TENSORSEAL_ROOT_KEY_FILE: "",
      TENSORSEAL_KEYSTORE_PASSPHRASE: "keystore pw",
    };
    assert.equal(s.run(["init"], { env }).status, 0);
    const locked = { ...env, TENSORSEAL_KEYSTORE_PASSPHRASE: "" };
    const j = doctorJson(s, [], locked);
    assert.deepEqual(
      of(j, "keystore.weak-kdf").map((x) => [x.severity, x.file]),
      [["warning", join(home, "keystore.json")]],
    );
    assert.equal(j.keystoreVerified, false);
    assert.equal(of(j, "keystore.unverified").length, 1);
    // With the passphrase in the environment the keystore is unlocked (its MAC checked).
    const unlocked = doctorJson(s, [], env);
    assert.equal(unlocked.keystoreVerified, true);
    assert.deepEqual(of(unlocked, "keystore.unverified"), []);
    // The default keystore (a root key file) has no passphrase to judge.
    assert.deepEqual(of(doctorJson(s, [], at(T0)), "keystore.weak-kdf"), []);
  });

  test("permissions: root key, identity, share, keystore and its directory", () => {
    const dir = join(s.dir, "secrets");
    mkdirSync(dir, { recursive: true });
    const id = join(dir, "renamed-identity.txt"); // found by content, not name
    assert.equal(s.run(["keygen", "-o", id]).status, 0);
    const split = s.run(["root", "split", "--shares", "2", "--threshold", "2", "-o", dir]);
    assert.equal(split.status, 0, split.stderr);
    const perms = (env = {}) =>
      doctorJson(s, [dir], { ...at(T0), ...env }).findings.filter((f) => f.id.startsWith("perm."));
    assert.deepEqual(perms(), []);

    const rootKey = s.env.TENSORSEAL_ROOT_KEY_FILE!;
    const home = s.env.TENSORSEAL_HOME!;
    const shares = [join(dir, "root-share-1-of-2.txt")];
    chmodSync(rootKey, 0o640);
    chmodSync(id, 0o604);
    chmodSync(shares[0]!, 0o644);
    chmodSync(join(home, "keystore.json"), 0o644);
    chmodSync(home, 0o755);
    try {
      // The keystore found by content under PATHS is the one in $TENSORSEAL_HOME: once.
      const f = doctorJson(s, [dir, home], at(T0)).findings.filter((x) => x.id.startsWith("perm."));
      assert.deepEqual(
        f.map((x) => [x.id, x.severity, x.file]).sort(),
        [
          ["perm.identity-readable", "critical", id],
          ["perm.keystore-readable", "warning", home],
          ["perm.keystore-readable", "warning", join(home, "keystore.json")],
          ["perm.root-key-readable", "critical", rootKey],
          ["perm.share-readable", "error", shares[0]],
        ].sort(),
      );
      const rk = f.find((x) => x.id === "perm.root-key-readable")!;
      assert.match(rk.message, /readable to group \(mode 0640\)$/);
      assert.match(rk.fix, /^chmod 600 /);
      assert.match(
        f.find((x) => x.id === "perm.identity-readable")!.message,
        /to others \(mode 0604\)/,
      );
    } finally {
      chmodSync(rootKey, 0o600);
      chmodSync(id, 0o600);
      chmodSync(shares[0]!, 0o600);
      chmodSync(join(home, "keystore.json"), 0o600);
      chmodSync(home, 0o700);
    }
    assert.deepEqual(perms(), []);
  });

  test("file.unreadable-header: the magic bytes or a .tseal name with a bad header", () => {
    const dir = join(s.dir, "broken");
    mkdirSync(dir, { recursive: true });
    const named = join(dir, "named.tseal");
    writeFileSync(named, "not a sealed file at all");
    const magic = join(dir, "shard-0001"); // no telling name: found by its magic bytes
    writeFileSync(magic, Buffer.concat([MAGIC, Buffer.alloc(40, 0xff)]));
    writeFileSync(join(dir, "plain.txt"), "just text");
    const f = of(doctorJson(s, [dir], at(T0)), "file.unreadable-header");
    assert.deepEqual(
      f.map((x) => [x.severity, x.file]),
      [
        ["error", named],
        ["error", magic],
      ],
    );
    assert.match(f[0]!.evidence, /^E_NOT_TSEAL|^E_MALFORMED/);
  });

  test("the text report escapes a hostile file name instead of letting it drive the terminal", () => {
    const dir = join(s.dir, "hostile");
    mkdirSync(dir, { recursive: true });
    const name = "evil\x1b[2J\x1b]0;owned\x07.tseal";
    writeFileSync(join(dir, name), Buffer.concat([MAGIC, Buffer.alloc(40, 0xff)]));
    const r = s.run(["doctor", "--fail-on", "none", dir], { env: at(T0) });
    assert.equal(r.status, 0, r.stderr.toString());
    const out = r.stdout.toString("utf8");
    assert.match(out, /file\.unreadable-header .*evil/);
    assert.ok(!out.includes("\x1b") && !out.includes("\x07"), JSON.stringify(out));
  });

  test("plaintext.sealed-copy: a plaintext model file left beside its sealed directory", () => {
    const model = join(s.dir, "proj", "llama");
    mkdirSync(model, { recursive: true });
    const weights = join(model, "model.safetensors");
    writeFileSync(weights, Buffer.alloc(5000, 7));
    writeFileSync(join(model, "config.json"), '{"hidden": 8}');
    writeFileSync(join(model, "empty.txt"), "");
    const sealed = join(s.dir, "proj", "llama.sealed");
    const r = s.run(["seal-dir", model, "-o", sealed]);
    assert.equal(r.status, 0, r.stderr);
    const proj = join(s.dir, "proj");
    // A same-sized file with other bytes is not a copy.
    writeFileSync(join(proj, "other.bin"), Buffer.alloc(5000, 8));
    const f = of(doctorJson(s, [proj], at(T0)), "plaintext.sealed-copy");
    assert.deepEqual(
      f.map((x) => [x.severity, x.file]),
      [
        ["error", join(model, "config.json")],
        ["error", weights],
      ],
    );
    assert.match(
      f[1]!.message,
      new RegExp(`copy of model\\.safetensors of the sealed model directory ${sealed}$`),
    );
    // Without the keystore unlocked the sealed manifest cannot be read: not judged.
    const locked = doctorJson(s, [proj], { ...at(T0), TENSORSEAL_ROOT_KEY_FILE: "" });
    assert.deepEqual(of(locked, "plaintext.sealed-copy"), []);
    // The plaintext removed: clean.
    rmSync(model, { recursive: true });
    assert.deepEqual(of(doctorJson(s, [proj], at(T0)), "plaintext.sealed-copy"), []);
  });

  test("exit codes and usage errors", () => {
    const dir = join(s.dir, "weak"); // one warning (the weak passphrase stanza)
    const run = (args: string[]) => s.run(["doctor", ...args, dir], { env: at(T0) }).status;
    assert.equal(run([]), 0, "a warning is below the default --fail-on error");
    assert.equal(run(["--fail-on", "warning"]), 21);
    assert.equal(run(["--fail-on", "note"]), 21, "the code names the worst, not the threshold");
    assert.equal(run(["--fail-on", "critical"]), 0);
    for (const [args, why] of [
      [["--fail-on", "high"], /--fail-on must be note, warning, error, critical or none/],
      [["--format", "xml"], /--format must be text, json or sarif/],
      [["--json", "--format", "sarif"], /contradictory/],
      [["--cert-days", "-1"], /--cert-days must be a whole number/],
    ] as const) {
      const r = s.run(["doctor", ...args, dir]);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, why);
      assert.equal(r.stdout.length, 0, "no partial report");
    }
    const missing = s.run(["doctor", join(s.dir, "nowhere")]);
    assert.equal(missing.status, 7);
  });
});
