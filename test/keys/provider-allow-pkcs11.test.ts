/**
 * Allowed PKCS#11 tokens against a real SoftHSM2 with two tokens: a file naming a token (or a
 * key) the user did not allow is refused, and no session is opened on any token (counted on
 * the loaded module itself); through the CLI, neither the module nor the PIN is even touched.
 * Skipped without SoftHSM2 unless TENSORSEAL_REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { openFile, sealFile } from "../../src/engine/index.js";
import { isTensorSealError } from "../../src/format/errors.js";
import { closeModules, loadModule } from "../../src/keys/pkcs11/module.js";
import { Pkcs11Provider } from "../../src/keys/pkcs11/provider.js";
import { parseProviderRecipient, providerIdentities } from "../../src/keys/provider.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { initToken, SOFTHSM_MODULE, softHsmEnv, softhsmMissing } from "./softhsm.js";

const PIN = "1234-allow";
const why = softhsmMissing();
if (why && process.env.TENSORSEAL_REQUIRE_ALL === "1") {
  test("SoftHSM2 is available (TENSORSEAL_REQUIRE_ALL=1)", () => assert.fail(why));
}

describe("allowed PKCS#11 tokens (SoftHSM2)", { skip: why ?? false }, () => {
  let sb: Sandbox;
  let env: NodeJS.ProcessEnv;
  const data = randomBytes(100_000);
  /** Sessions opened and logins on the real module, counted where pkcs11js is called. */
  const count = { sessions: 0, logins: 0 };

  before(async () => {
    sb = sandbox();
    env = softHsmEnv(sb.dir, PIN);
    Object.assign(process.env, env); // before the module is loaded: SoftHSM2 reads it then
    for (const label of ["prod", "lab"]) initToken(env, label, PIN, "9876-so");
    const api = loadModule(SOFTHSM_MODULE);
    const open = api.C_OpenSession.bind(api);
    const login = api.C_Login.bind(api);
    api.C_OpenSession = (slot, flags) => {
      count.sessions++;
      return open(slot, flags);
    };
    api.C_Login = (session, userType, pin) => {
      count.logins++;
      login(session, userType, pin);
    };
    const hsm = new Pkcs11Provider({ module: SOFTHSM_MODULE, pin: () => PIN });
    await hsm.generateKey("prod/k");
    await hsm.generateKey("lab/k");
    writeFileSync(join(sb.dir, "w.bin"), data);
    await sealFile(join(sb.dir, "w.bin"), join(sb.dir, "lab.tseal"), {
      recipients: [parseProviderRecipient("pkcs11:lab/k")!],
      workers: 0,
    });
  });

  beforeEach(() => {
    count.sessions = 0;
    count.logins = 0;
  });

  after(() => {
    closeModules();
    sb?.cleanup();
  });

  test("a token or key not on the list: refused, no session opened, no login", async () => {
    for (const pkcs11 of [[], ["prod"], ["prod/k"], ["lab/other"], ["la"]]) {
      await assert.rejects(
        openFile(join(sb.dir, "lab.tseal"), join(sb.dir, "no.out"), {
          identities: providerIdentities({ pkcs11 }),
          workers: 0,
        }),
        (e: unknown) => {
          assert.ok(isTensorSealError(e, "E_KEY_STATE"), String(e));
          assert.match(
            e.detail,
            /^pkcs11 key lab\/k is not allowed, so no session was opened on token lab: .*`-i pkcs11:lab`/,
          );
          return true;
        },
      );
    }
    assert.deepEqual(count, { sessions: 0, logins: 0 });
    assert.ok(!existsSync(join(sb.dir, "no.out")));
  });

  test("the token, or exactly that key, on the list: it opens", async () => {
    for (const pkcs11 of [["lab"], ["prod", "lab/k"]]) {
      const out = join(sb.dir, `ok-${pkcs11.length}.out`);
      await openFile(join(sb.dir, "lab.tseal"), out, {
        identities: providerIdentities({ pkcs11 }),
        workers: 0,
      });
      assert.ok(readFileSync(out).equals(data));
    }
    assert.ok(count.sessions >= 2 && count.logins >= 2, JSON.stringify(count));
  });

  test("CLI: an unlisted token touches neither the module nor the PIN; -i, env and yaml allow it", () => {
    // A module path that does not exist and no PIN: reaching either would be exit 8.
    const untouched = {
      ...env,
      TENSORSEAL_PKCS11_MODULE: join(sb.dir, "missing.so"),
      TENSORSEAL_PKCS11_PIN: "",
    };
    let r = sb.run(["open", "lab.tseal", "-o", "cli.out"], { env: untouched });
    assert.equal(r.status, 9, r.stderr);
    assert.match(
      r.stderr,
      /error: lab\.tseal: pkcs11 key lab\/k is not allowed, so no session was opened on token lab/,
    );
    r = sb.run(["verify", "lab.tseal"], {
      env: { ...untouched, TENSORSEAL_PKCS11_TOKENS: "prod" },
    });
    assert.equal(r.status, 9, r.stderr);
    assert.ok(!existsSync(join(sb.dir, "cli.out")));

    r = sb.run(["open", "lab.tseal", "-o", "flag.out", "-i", "pkcs11:lab"], { env });
    assert.equal(r.status, 0, r.stderr);
    r = sb.run(["open", "lab.tseal", "-o", "env.out"], {
      env: { ...env, TENSORSEAL_PKCS11_TOKENS: "prod, lab/k" },
    });
    assert.equal(r.status, 0, r.stderr);
    writeFileSync(join(sb.dir, ".tensorseal.yaml"), "providers:\n  pkcs11:\n    tokens: [lab]\n");
    r = sb.run(["open", "lab.tseal", "-o", "yaml.out"], { env });
    assert.equal(r.status, 0, r.stderr);
    for (const f of ["flag.out", "env.out", "yaml.out"])
      assert.ok(readFileSync(join(sb.dir, f)).equals(data));
  });
});
