/**
 * Service tiers through the CLI, against a real key service over HTTPS (the dev CA) with the
 * built-in tier policy and an attestation verifier: a restricted key is created with the
 * tier's rotation period and refuses a longer one (exit 8, the rule named); a restricted file
 * does not open without attestation and opens with `--attest`; the registry campaign over a
 * restricted key fails without evidence (nothing rewritten, the registry unchanged) and moves
 * the file and its registration with `--attest`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseHeader } from "../../src/format/header.js";
import { parseServiceStanza } from "../../src/keys/service/stanza.js";
import { BUILTIN_SERVICE_TIERS, TierPolicy } from "../../src/service/tiers.js";
import { CLI, type Sandbox, sandbox } from "../cli/helpers.js";
import { evidenceProgram, testVerifier } from "./evidence.js";
import { type CliService, cliService, token } from "./helpers.js";

describe("service tiers from the CLI", () => {
  let sb: Sandbox;
  let svc: CliService;
  let env: NodeJS.ProcessEnv;
  let program: string;
  let artifact: string;
  const plain = randomBytes(30_000);
  const versions = () =>
    parseHeader(readFileSync(join(sb.dir, "crown.tseal")))
      .stanzas.filter((s) => s.type === "service")
      .map((s) => parseServiceStanza(s).version);
  const registered = async () =>
    (await svc.db.db.selectFrom("artifacts").select("key_version").executeTakeFirstOrThrow())
      .key_version;

  before(async () => {
    sb = sandbox();
    const verifier = await testVerifier(sb.dir);
    svc = await cliService(sb, {
      tiers: new TierPolicy(BUILTIN_SERVICE_TIERS),
      attestation: verifier.attestation,
    });
    env = {
      ...svc.env,
      TENSORSEAL_SERVER_TOKEN: await token(svc.db, "admin,wrap,unwrap,rewrap"),
    };
    program = evidenceProgram(sb.dir, "evidence.mjs", verifier);
    writeFileSync(join(sb.dir, "m.bin"), plain);
  });
  after(async () => {
    await svc?.close();
    sb?.cleanup();
  });

  test("a restricted key gets the tier's rotation period and refuses a longer one", async () => {
    let r = await sb.runAsync(
      ["service", "keys", "create", "crown", "--sensitivity", "restricted", "--json"],
      env,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout.toString()).rotationPeriod, 90 * 86_400);
    r = await sb.runAsync(["service", "keys", "set", "crown", "--rotation-period", "120d"], env);
    assert.equal(r.status, 8, r.stderr);
    assert.match(r.stderr, /tier restricted requires a rotation period of at most 90d/);
  });

  test("a restricted file opens only with attestation", async () => {
    const s = await sb.runAsync(
      ["seal", "m.bin", "-o", "crown.tseal", "-r", "service:crown", "--register", "--json"],
      env,
    );
    assert.equal(s.status, 0, s.stderr);
    artifact = JSON.parse(s.stdout.toString()).artifacts[0];
    let o = await sb.runAsync(["open", "crown.tseal", "-o", "-"], env);
    assert.notEqual(o.status, 0);
    assert.match(o.stderr, /only with attestation evidence/);
    o = await sb.runAsync(["open", "crown.tseal", "-o", "out.bin", "--attest", program], env);
    assert.equal(o.status, 0, o.stderr);
    assert.ok(readFileSync(join(sb.dir, "out.bin")).equals(plain));
  });

  test("the registry campaign needs --attest for a restricted key", async () => {
    let r = await sb.runAsync(["service", "keys", "rotate", "crown"], env);
    assert.equal(r.status, 0, r.stderr);
    const before = readFileSync(join(sb.dir, "crown.tseal"));
    r = await sb.runAsync(["rewrap", "--to-latest", "--registry", "--json"], env);
    assert.equal(r.status, 1, r.stderr);
    const j = JSON.parse(r.stdout.toString());
    assert.equal(j.failed, 1);
    assert.match(j.failures[0].error, /only with attestation evidence/);
    assert.equal(j.stillOld[0].artifact, artifact);
    assert.ok(readFileSync(join(sb.dir, "crown.tseal")).equals(before), "nothing rewritten");
    assert.equal(await registered(), 1);

    r = await sb.runAsync(
      ["rewrap", "--to-latest", "--registry", "--json", "--attest", program],
      env,
    );
    assert.equal(r.status, 0, r.stderr);
    const k = JSON.parse(r.stdout.toString());
    assert.deepEqual([k.rewrapped, k.failed, k.stillOld.length], [1, 0, 0]);
    assert.deepEqual(versions(), [2]);
    assert.equal(await registered(), 2);
  });
});

describe("serve --tier-policy", () => {
  let sb: Sandbox;
  before(() => {
    sb = sandbox();
  });
  after(() => sb?.cleanup());

  test("a bad policy file stops serve before it listens (exit 2, the field named)", async () => {
    writeFileSync(join(sb.dir, "tiers.json"), JSON.stringify({ restricted: { attest: true } }));
    const r = await sb.runAsync(
      ["serve", "--dev", "--listen", "127.0.0.1:0", "--tier-policy", "tiers.json"],
      {},
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /tiers\.json: unknown field "attest" in restricted/);
    assert.doesNotMatch(r.stderr, /listening on/);
  });

  test("builtin: serve says which minimums it enforces", async () => {
    const srv = spawn(
      process.execPath,
      [CLI, "serve", "--dev", "--listen", "127.0.0.1:0", "--tier-policy", "builtin"],
      { env: sb.env, stdio: ["ignore", "ignore", "pipe"] },
    );
    let err = "";
    try {
      await new Promise<void>((resolve, reject) => {
        srv.stderr!.on("data", (d: Buffer) => {
          err += d.toString();
          if (/tiers: /.test(err) && /\n/.test(err.slice(err.indexOf("tiers: ")))) resolve();
        });
        srv.once("exit", (code) => reject(new Error(`serve exited ${code}: ${err}`)));
      });
    } finally {
      srv.kill("SIGTERM");
    }
    assert.match(
      err,
      /tiers: confidential \(rotation <= 31536000s, client cache <= 300s, recipients kek\/pkcs11\/aws-kms\/service\/x25519\/mlkem768x25519\); restricted \(rotation <= 7776000s, attested release, dual control, client cache <= 0s, post-quantum KEM, recipients pkcs11\/aws-kms\/service\/mlkem768x25519\)/,
    );
  });
});
