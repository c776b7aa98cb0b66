/**
 * `tensorseal` with an HSM recipient, as users run it: `hsm create-key`, `seal -r pkcs11:...`,
 * a plain `open` that finds the provider from the kms stanza (the token allowed in the env), `rewrap --add-recipient`, and a
 * wrong PIN (exit 8). Skipped without SoftHSM2 unless TENSORSEAL_REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { initToken, softHsmEnv, softhsmMissing } from "../keys/softhsm.js";
import { type Sandbox, sandbox } from "./helpers.js";

const PIN = "2468-cli";

const why = softhsmMissing();
if (why && process.env.TENSORSEAL_REQUIRE_ALL === "1") {
  test("SoftHSM2 is available for the CLI (TENSORSEAL_REQUIRE_ALL=1)", () => assert.fail(why));
}

describe("tensorseal CLI with a PKCS#11 recipient", { skip: why ?? false }, () => {
  let s: Sandbox;
  let hsmEnv: NodeJS.ProcessEnv;
  const data = randomBytes(1024 * 1024 + 77);

  before(() => {
    s = sandbox();
    // The token is allowed for unwrapping (docs/PROVIDERS.md, "Allowed keys").
    hsmEnv = { ...softHsmEnv(s.dir, PIN), TENSORSEAL_PKCS11_TOKENS: "cli-token" };
    initToken(hsmEnv, "cli-token", PIN, "1357-so");
    writeFileSync(join(s.dir, "weights.bin"), data);
  });
  after(() => s?.cleanup());

  test("hsm create-key prints the recipient; seal -r pkcs11: and a plain open round-trip", () => {
    let r = s.run(["hsm", "create-key", "cli-token/models"], { env: hsmEnv });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.toString().trim(), "pkcs11:cli-token/models");
    r = s.run(["hsm", "create-key", "cli-token/models"], { env: hsmEnv });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /already has a key labelled "models"/);

    r = s.run(["seal", "weights.bin", "-r", "pkcs11:cli-token/models"], { env: hsmEnv });
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["open", "weights.bin.tseal", "-o", "out.bin"], { env: hsmEnv });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(join(s.dir, "out.bin")).equals(data));
  });

  test("a wrong PIN exits 8 with the provider and the reason, never the PIN", () => {
    const env = { ...hsmEnv, TENSORSEAL_PKCS11_PIN: "0000-wrong" };
    const r = s.run(["open", "weights.bin.tseal", "-o", "wrong.bin"], { env });
    assert.equal(r.status, 8, r.stderr);
    assert.match(r.stderr, /tensorseal: error: weights\.bin\.tseal: pkcs11: .*wrong PIN/);
    assert.ok(!r.stderr.includes("0000-wrong"));
    assert.ok(!existsSync(join(s.dir, "wrong.bin")));
  });

  test("rewrap --add-recipient pkcs11: then open with the new token key only", () => {
    let r = s.run(["hsm", "create-key", "cli-token/backup"], { env: hsmEnv });
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["init"]);
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["seal", "weights.bin", "-o", "kek.tseal"]);
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["rewrap", "kek.tseal", "--add-recipient", "pkcs11:cli-token/backup"], {
      env: hsmEnv,
    });
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["rewrap", "kek.tseal", "--remove-recipient", "kek:default"], { env: hsmEnv });
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["open", "kek.tseal", "-o", "kek.out"], { env: hsmEnv });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(join(s.dir, "kek.out")).equals(data));
  });

  test("no PIN configured: exit 8 with what to set", () => {
    const env = { ...hsmEnv, TENSORSEAL_PKCS11_PIN: "" };
    const r = s.run(["open", "weights.bin.tseal", "-o", "nopin.bin"], { env });
    assert.equal(r.status, 8, r.stderr);
    assert.match(r.stderr, /pkcs11: no PIN: set TENSORSEAL_PKCS11_PIN/);
  });
});
