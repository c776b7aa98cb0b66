/**
 * `open --attest PROGRAM` against a real key service over HTTPS whose policy releases the key
 * `secure` only to attested runtimes: the program gets the challenge and prints the verifier's
 * JWT; the CLI presents it with a fresh ephemeral key and opens the HPKE-sealed file key.
 * Without evidence, with evidence bound to another key, from a failing program or one that
 * prints no token, nothing opens (exit 8) and no token appears in any message.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Authorizer, DEFAULT_POLICIES } from "../../src/service/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { evidenceProgram, type TestVerifier, testVerifier } from "./evidence.js";
import { bearer, type CliService, cliService, token } from "./helpers.js";

const POLICY = `@id("secure-needs-snp")
forbid (principal, action == TensorSeal::Action::"unwrap", resource == TensorSeal::Key::"secure")
unless { context has attestation && context.attestation.tee == "sev-snp" };`;
/**
 * The evidence program's checks of the challenge: its nonce is the one in the environment, and the
 * CLI asks for an X-Wing release and says so (the key size agrees).
 */
const CHECKS = `if (req.nonce !== process.env.TENSORSEAL_ATTEST_NONCE) process.exit(9);
if (req.kem !== "mlkem768x25519" || Buffer.from(req.ephemeralPublicKey, "base64").length !== 1216) process.exit(10);`;

function script(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

describe("open --attest: attested release from the CLI", () => {
  let sb: Sandbox;
  let svc: CliService;
  let env: NodeJS.ProcessEnv;
  let sealed: string;
  let good: string;
  let verifier: TestVerifier;
  const plain = randomBytes(100_000);

  before(async () => {
    sb = sandbox();
    verifier = await testVerifier(sb.dir);
    const policies = {
      ...DEFAULT_POLICIES,
      "secure-needs-snp": POLICY.split("\n").slice(1).join("\n"),
    };
    svc = await cliService(sb, {
      authorizer: Authorizer.fromPolicies(policies, "test"),
      attestation: verifier.attestation,
    });
    const admin = await token(svc.db, "admin,wrap");
    const created = await svc.app.inject({
      method: "POST",
      url: "/v1/keys",
      headers: bearer(admin),
      payload: { name: "secure" },
    });
    assert.equal(created.statusCode, 200, created.body);
    writeFileSync(join(sb.dir, "m.bin"), plain);
    sealed = join(sb.dir, "m.tseal");
    const s = await sb.runAsync(
      ["seal", join(sb.dir, "m.bin"), "-o", sealed, "-r", "service:secure"],
      {
        ...svc.env,
        TENSORSEAL_SERVER_TOKEN: admin,
      },
    );
    assert.equal(s.status, 0, s.stderr);
    env = { ...svc.env, TENSORSEAL_SERVER_TOKEN: await token(svc.db, "unwrap") };
    good = evidenceProgram(sb.dir, "evidence.mjs", verifier, { checks: CHECKS });
  });
  after(async () => {
    await svc.close();
    sb.cleanup();
  });

  test("without evidence the policy refuses; with --attest the file opens", async () => {
    const out = join(sb.dir, "plain-open.bin");
    const refused = await sb.runAsync(["open", sealed, "-o", out], env);
    assert.equal(refused.status, 8, refused.stderr);
    assert.ok(!existsSync(out));
    const attested = join(sb.dir, "attested.bin");
    const r = await sb.runAsync(["open", sealed, "-o", attested, "--attest", good], env);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(attested).equals(plain));
    // The environment variable does the same (for exec and scripts).
    const viaEnv = join(sb.dir, "via-env.bin");
    const e = await sb.runAsync(["open", sealed, "-o", viaEnv], {
      ...env,
      TENSORSEAL_ATTEST_COMMAND: good,
    });
    assert.equal(e.status, 0, e.stderr);
    assert.ok(readFileSync(viaEnv).equals(plain));
  });

  test("evidence bound to another key, a failing program or no token: refused, nothing opens", async () => {
    const cases: [string, RegExp][] = [
      [
        evidenceProgram(sb.dir, "other-key.mjs", verifier, {
          checks: CHECKS,
          bindTo: "A".repeat(43),
        }),
        /not bound to the presented ephemeral key/,
      ],
      [
        script(sb.dir, "fails.sh", 'echo "agent unavailable" >&2; exit 3'),
        /evidence command .*exited 3: agent unavailable/,
      ],
      [script(sb.dir, "garbage.sh", "echo not-a-token"), /printed no JWT/],
      [
        script(
          sb.dir,
          "leaks.sh",
          'echo "bad evidence eyJhbGciOiJFZERTQSJ9.eyJub25jZSI6IngifQ.c2lnbmF0dXJl" >&2; exit 4',
        ),
        /exited 4: bad evidence \[token\]/,
      ],
      [join(sb.dir, "missing-program"), /cannot be run \(ENOENT\)/],
    ];
    for (const [program, message] of cases) {
      const out = join(sb.dir, "refused.bin");
      const r = await sb.runAsync(["open", sealed, "-o", out, "--attest", program], env);
      assert.equal(r.status, 8, `${program}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /eyJ[A-Za-z0-9_-]{10,}/, "a token in a message");
      assert.ok(!existsSync(out));
    }
  });
});
