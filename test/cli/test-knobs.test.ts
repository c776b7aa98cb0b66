/**
 * Test-only settings cannot weaken real keys: a scrypt work factor below the default, a fixed
 * clock and a lower wrap limit are honoured only with TENSORSEAL_TEST_KNOBS=1. Without it a
 * lower work factor is ignored with a warning (the keystore gets the default cost).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type Sandbox, sandbox } from "./helpers.js";

let s: Sandbox;
before(() => {
  s = sandbox();
});
after(() => s.cleanup());

/** A passphrase keystore in a fresh home; returns init's stderr and the recorded scrypt cost. */
function initWithPassphrase(
  home: string,
  env: NodeJS.ProcessEnv,
): { stderr: string; logN: number } {
  const r = s.run(["init"], {
    env: {
      TENSORSEAL_HOME: join(s.dir, home),
      TENSORSEAL_ROOT_KEY_FILE: "",
      TENSORSEAL_KEYSTORE_PASSPHRASE: "correct horse battery staple",
      ...env,
    },
  });
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(readFileSync(join(s.dir, home, "keystore.json"), "utf8"));
  return { stderr: r.stderr, logN: doc.root.logN };
}

test("a lower scrypt work factor without TENSORSEAL_TEST_KNOBS=1 is ignored, with a warning", () => {
  const r = initWithPassphrase("plain", { TENSORSEAL_TEST_KNOBS: "" });
  assert.equal(r.logN, 18, "the default cost");
  assert.match(r.stderr, /warning: ignoring TENSORSEAL_SCRYPT_WORK_FACTOR=10: .*test-only/);
});

test("with TENSORSEAL_TEST_KNOBS=1 the test cost is used", () => {
  const r = initWithPassphrase("knobs", {});
  assert.equal(r.logN, 10);
  assert.doesNotMatch(r.stderr, /warning/);
});

test("an out-of-range work factor is a usage error naming the variable", () => {
  const r = s.run(["init"], {
    env: {
      TENSORSEAL_HOME: join(s.dir, "bad"),
      TENSORSEAL_ROOT_KEY_FILE: "",
      TENSORSEAL_KEYSTORE_PASSPHRASE: "x",
      TENSORSEAL_SCRYPT_WORK_FACTOR: "4",
    },
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /TENSORSEAL_SCRYPT_WORK_FACTOR must be an integer from 10 to 20/);
});

test("a fixed clock without TENSORSEAL_TEST_KNOBS=1 is ignored", () => {
  assert.equal(s.run(["init"]).status, 0);
  const env = { TENSORSEAL_TEST_KNOBS: "", TENSORSEAL_NOW: "2031-01-01T00:00:00Z" };
  assert.equal(s.run(["keys", "create", "k"], { env }).status, 0);
  const r = s.run(["keys", "show", "k", "--json"]);
  const created = new Date(JSON.parse(r.stdout.toString()).versions[0].created);
  assert.ok(created.getFullYear() < 2031, `created ${created.toISOString()}`);
});
