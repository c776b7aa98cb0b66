import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Sandbox, sandbox } from "./helpers.js";

describe("tensorseal CLI", () => {
  let s: Sandbox;
  let plain: string;
  const data = randomBytes(3 * 1024 * 1024 + 123);
  before(() => {
    s = sandbox();
    plain = join(s.dir, "weights.bin");
    writeFileSync(plain, data);
    const r = s.run(["init"]);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => s.cleanup());

  test("seal with the default key, inspect without a key, open round trip", () => {
    const sealed = join(s.dir, "w.tseal");
    let r = s.run(["seal", plain, "-o", sealed, "-c", "tenant=acme", "-l", "model=demo"]);
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["inspect", sealed, "--json"], { env: { TENSORSEAL_ROOT_KEY_FILE: "" } });
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout.toString());
    assert.equal(info.plaintextLength, data.length);
    assert.deepEqual(info.context, { tenant: "acme" });
    assert.deepEqual(info.labels, { model: "demo" });
    assert.deepEqual(info.stanzas, ["kek default version 1"]);
    assert.equal(info.verified, false);
    r = s.run(["open", sealed, "-o", join(s.dir, "w.out"), "--expect-context", "tenant=acme"]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(join(s.dir, "w.out")).equals(data));
    r = s.run(["inspect", sealed, "--verify", "--json"]);
    assert.equal(JSON.parse(r.stdout.toString()).verified, true);
  });

  test("a wrong expected context is refused and writes nothing", () => {
    const sealed = join(s.dir, "ctx.tseal");
    assert.equal(s.run(["seal", plain, "-o", sealed, "-c", "tenant=acme"]).status, 0);
    const r = s.run([
      "open",
      sealed,
      "-o",
      join(s.dir, "ctx.out"),
      "--expect-context",
      "tenant=other",
    ]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /tenant/);
    assert.equal(existsSync(join(s.dir, "ctx.out")), false);
  });

  test("tampered file: exit code 5, no output, no temp file", () => {
    const sealed = join(s.dir, "t.tseal");
    assert.equal(s.run(["seal", plain, "-o", sealed]).status, 0);
    const bytes = readFileSync(sealed);
    bytes[bytes.length - 17] = bytes[bytes.length - 17]! ^ 0x80;
    writeFileSync(sealed, bytes);
    const r = s.run(["open", sealed, "-o", join(s.dir, "t.out")]);
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stderr, /authentication|modified/);
    assert.equal(existsSync(join(s.dir, "t.out")), false);
    assert.deepEqual(
      readdirSync(s.dir).filter((f) => f.includes("tmp")),
      [],
    );
    assert.equal(s.run(["verify", sealed]).status, 5);
  });

  test("not a sealed file: exit code 3; bad usage: exit code 2", () => {
    assert.equal(s.run(["inspect", plain]).status, 3);
    assert.equal(s.run(["seal"]).status, 2);
    assert.equal(s.run(["seal", plain, "--chunk-size", "3000", "-o", join(s.dir, "x")]).status, 3);
  });

  test("refuses to overwrite without --force", () => {
    const out = join(s.dir, "exists.tseal");
    writeFileSync(out, "keep me");
    const r = s.run(["seal", plain, "-o", out]);
    assert.equal(r.status, 2);
    assert.equal(readFileSync(out, "utf8"), "keep me");
    assert.equal(s.run(["seal", plain, "-o", out, "--force"]).status, 0);
  });

  test("x25519 recipients: keygen, seal -r, open -i; another identity is refused", () => {
    const id1 = join(s.dir, "id1.txt");
    const id2 = join(s.dir, "id2.txt");
    let r = s.run(["keygen", "-o", id1, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const recipient = JSON.parse(r.stdout.toString()).recipient as string;
    assert.match(recipient, /^tseal1/);
    assert.equal(s.run(["keygen", "-o", id2]).status, 0);
    const sealed = join(s.dir, "x.tseal");
    assert.equal(s.run(["seal", plain, "-o", sealed, "-r", recipient]).status, 0);
    r = s.run(["open", sealed, "-o", join(s.dir, "x.out"), "-i", id1]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(join(s.dir, "x.out")).equals(data));
    r = s.run(["open", sealed, "-o", join(s.dir, "x2.out"), "-i", id2]);
    assert.equal(r.status, 4, r.stderr);
  });

  test("passphrase: seal and open; a wrong passphrase fails without echoing it", () => {
    const sealed = join(s.dir, "p.tseal");
    let r = s.run(["seal", plain, "-o", sealed, "--passphrase"], {
      env: { TENSORSEAL_PASSPHRASE: "correct horse" },
    });
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["open", sealed, "-o", join(s.dir, "p.out")], {
      env: { TENSORSEAL_PASSPHRASE: "correct horse" },
    });
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["open", sealed, "-o", join(s.dir, "p2.out")], {
      env: { TENSORSEAL_PASSPHRASE: "wrong battery" },
    });
    assert.equal(r.status, 5);
    assert.doesNotMatch(r.stderr, /wrong battery/);
  });

  test("stdin to a file and a file to stdout, through the atomic output", () => {
    const sealed = join(s.dir, "from-stdin.tseal");
    let r = s.run(["seal", "-", "-o", sealed], { input: data });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(sealed).length > data.length);
    r = s.run(["open", sealed, "-o", join(s.dir, "from-stdin.out")]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(join(s.dir, "from-stdin.out")).equals(data));
    r = s.run(["open", "-", "-o", join(s.dir, "cut.out")], {
      input: readFileSync(sealed).subarray(0, -1),
    });
    assert.equal(r.status, 5);
    assert.equal(existsSync(join(s.dir, "cut.out")), false);
    assert.deepEqual(
      readdirSync(s.dir).filter((f) => f.includes("tseal-tmp")),
      [],
    );
  });

  test("stdin to stdout and back", () => {
    let r = s.run(["seal", "-", "-o", "-"], { input: data });
    assert.equal(r.status, 0, r.stderr);
    const sealed = r.stdout;
    r = s.run(["open", "-", "-o", "-"], { input: sealed });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.equals(data));
    r = s.run(["open", "-", "-o", "-"], { input: sealed.subarray(0, sealed.length - 1) });
    assert.equal(r.status, 5);
  });

  test("rewrap: add and remove recipients, rotate and --to-latest, payload untouched", () => {
    const id = join(s.dir, "rw-id.txt");
    const recipient = JSON.parse(s.run(["keygen", "-o", id, "--json"]).stdout.toString()).recipient;
    const sealed = join(s.dir, "rw.tseal");
    assert.equal(s.run(["seal", plain, "-o", sealed]).status, 0);
    const payloadBefore = readFileSync(sealed).subarray(-data.length);
    let r = s.run(["rewrap", sealed, "--add-recipient", recipient]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(s.run(["open", sealed, "-o", join(s.dir, "rw1.out"), "-i", id]).status, 0);
    r = s.run(["rewrap", sealed, "--remove-recipient", recipient]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      s.run(["open", sealed, "-o", join(s.dir, "rw2.out"), "-i", id], {
        env: { TENSORSEAL_HOME: join(s.dir, "none") },
      }).status,
      4,
    );
    assert.equal(s.run(["keys", "rotate", "default"]).status, 0);
    r = s.run(["rewrap", sealed, "--to-latest"]);
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(s.run(["inspect", sealed, "--json"]).stdout.toString());
    assert.deepEqual(info.stanzas, ["kek default version 2"]);
    assert.ok(readFileSync(sealed).subarray(-data.length).equals(payloadBefore));
    assert.equal(s.run(["open", sealed, "-o", join(s.dir, "rw3.out")]).status, 0);
    assert.ok(readFileSync(join(s.dir, "rw3.out")).equals(data));
    assert.equal(s.run(["rewrap", sealed, "--remove-recipient", "kek:default"]).status, 2);
  });

  test("keys create/list/show never print key material", () => {
    assert.equal(s.run(["keys", "create", "team-a"]).status, 0);
    const list = JSON.parse(s.run(["keys", "list", "--json"]).stdout.toString());
    assert.deepEqual(list.map((k: { name: string }) => k.name).sort(), ["default", "team-a"]);
    const show = s.run(["keys", "show", "team-a", "--json"]).stdout.toString();
    assert.doesNotMatch(show, /[0-9a-f]{64}/);
    assert.equal(s.run(["keys", "create", "team-a"]).status, 6);
    const keystoreText = readFileSync(join(s.env.TENSORSEAL_HOME!, "keystore.json"), "utf8");
    assert.doesNotMatch(
      keystoreText,
      new RegExp(readFileSync(s.env.TENSORSEAL_ROOT_KEY_FILE!, "utf8")),
    );
  });
});
