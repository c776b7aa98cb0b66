/**
 * Allowed provider keys against a real KMS (moto's server mode on loopback), behind a proxy that
 * records every call: a file naming a KMS key the user did not allow is refused with an error
 * that names the key and how to allow it, and KMS never hears about that key, on every path
 * that unwraps (library, open, verify, inspect --verify, rewrap, --to-latest campaigns, exec,
 * open-dir); flags, TENSORSEAL_KMS_KEYS and .tensorseal.yaml allow it, alone or together.
 * Skipped without moto unless TENSORSEAL_REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { inspectFile, openFile, sealFile } from "../../src/engine/index.js";
import { isTensorSealError } from "../../src/format/errors.js";
import { reEncryptKmsStanza } from "../../src/keys/kms/provider.js";
import { parseProviderRecipient, providerIdentities } from "../../src/keys/provider.js";
import { CLI, type Sandbox, sandbox } from "../cli/helpers.js";
import {
  freePort,
  type KmsRecorder,
  kmsRecorder,
  MOTO_REGION,
  motoEnv,
  motoServer,
  startMoto,
  stopMoto,
} from "./moto.js";

const MOTO = motoServer();
const why = MOTO ? null : "moto_server not found (run scripts/setup-test-deps.sh)";
if (why && process.env.TENSORSEAL_REQUIRE_ALL === "1") {
  test("moto is available (TENSORSEAL_REQUIRE_ALL=1)", () => assert.fail(why));
}

const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");

describe("allowed KMS keys (moto behind a recording proxy)", { skip: why ?? false }, () => {
  let moto: ChildProcess | null = null;
  let rec: KmsRecorder;
  let sdk: KMSClient;
  let sb: Sandbox;
  let env: NodeJS.ProcessEnv;
  /** The user's key (alias/mine) and a key the attacker's file names. */
  let mine: string;
  let theirs: string;
  const data = randomBytes(200_000);

  /** Calls that named `key` (or any call, without one). */
  const callsFor = (key?: string) =>
    rec.calls.filter((c) => key === undefined || c.keyId === key).map((c) => c.op);

  before(async () => {
    const port = await freePort();
    moto = await startMoto(MOTO!, port);
    rec = await kmsRecorder(`http://127.0.0.1:${port}`);
    env = motoEnv({ TENSORSEAL_KMS_ENDPOINT: rec.endpoint });
    Object.assign(process.env, env);
    sdk = new KMSClient({ region: MOTO_REGION, endpoint: `http://127.0.0.1:${port}` });
    const key = async (d: string) =>
      (await sdk.send(new CreateKeyCommand({ Description: d }))).KeyMetadata!.Arn!;
    mine = await key("the user's key");
    theirs = await key("a key named by an attacker's file");
    await sdk.send(new CreateAliasCommand({ AliasName: "alias/mine", TargetKeyId: mine }));
    sb = sandbox();
    writeFileSync(join(sb.dir, "w.bin"), data);
    const seal = (out: string, refs: string[]) =>
      sealFile(join(sb.dir, "w.bin"), join(sb.dir, out), {
        recipients: refs.map((r) => parseProviderRecipient(`aws-kms:${r}`)!),
        workers: 0,
      });
    await seal("theirs.tseal", [theirs]);
    await seal("mixed.tseal", [theirs, mine]); // the attacker's stanza comes first
  });

  beforeEach(() => {
    rec.calls.length = 0;
  });

  after(async () => {
    sdk?.destroy();
    await rec?.close();
    await stopMoto(moto);
    sb?.cleanup();
  });

  const refusedFor = (key: string) => (e: unknown) => {
    assert.ok(isTensorSealError(e, "E_KEY_STATE"), String(e));
    assert.match(e.detail, new RegExp(`^aws-kms key ${key} is not allowed, so KMS was not asked`));
    return true;
  };

  describe("library", () => {
    test("a file naming a key not on the list is refused and KMS hears nothing", async () => {
      const out = join(sb.dir, "lib-refused.out");
      for (const awsKms of [[], [mine], ["arn:aws:kms:eu-west-1:123456789012:key/*"]]) {
        await assert.rejects(
          openFile(join(sb.dir, "theirs.tseal"), out, {
            identities: providerIdentities({ awsKms }),
            workers: 0,
          }),
          refusedFor(theirs),
        );
      }
      assert.deepEqual(rec.calls, [], "no KMS request at all");
      assert.ok(!existsSync(out));
    });

    test("the same file opens once its key is listed (exact ARN or the account's pattern)", async () => {
      for (const awsKms of [[theirs], ["arn:aws:kms:*:123456789012:key/*"]]) {
        const out = join(sb.dir, `lib-${rec.calls.length}.out`);
        await openFile(join(sb.dir, "theirs.tseal"), out, {
          identities: providerIdentities({ awsKms }),
          workers: 0,
        });
        assert.ok(readFileSync(out).equals(data));
      }
      assert.deepEqual(callsFor(theirs), ["Decrypt", "Decrypt"]);
    });

    test("an unlisted stanza is skipped: the allowed one opens, the other key is never named", async () => {
      const out = join(sb.dir, "lib-mixed.out");
      await openFile(join(sb.dir, "mixed.tseal"), out, {
        identities: providerIdentities({ awsKms: [mine] }),
        workers: 0,
      });
      assert.ok(readFileSync(out).equals(data));
      assert.deepEqual(rec.calls, [{ op: "Decrypt", keyId: mine }]);
    });

    test("an alias allows the key it points to: KMS is asked about the alias only", async () => {
      await assert.rejects(
        openFile(join(sb.dir, "theirs.tseal"), join(sb.dir, "alias-refused.out"), {
          identities: providerIdentities({ awsKms: ["alias/mine"] }),
          workers: 0,
        }),
        refusedFor(theirs),
      );
      assert.deepEqual(rec.calls, [{ op: "DescribeKey", keyId: "alias/mine" }]);
      rec.calls.length = 0;
      const out = join(sb.dir, "alias.out");
      await openFile(join(sb.dir, "mixed.tseal"), out, {
        identities: providerIdentities({ awsKms: ["alias/mine"] }),
        workers: 0,
      });
      assert.ok(readFileSync(out).equals(data));
      assert.deepEqual(callsFor(theirs), []);
      assert.deepEqual(callsFor(mine), ["Decrypt"]);
    });

    test("ReEncrypt of a stanza whose key is not listed is refused before KMS", async () => {
      const [stanza] = (await inspectFile(join(sb.dir, "theirs.tseal"))).stanzas;
      await assert.rejects(
        reEncryptKmsStanza(stanza!, mine, { awsKms: [mine] }),
        refusedFor(theirs),
      );
      assert.deepEqual(rec.calls, []);
      const moved = await reEncryptKmsStanza(stanza!, mine, { awsKms: [theirs] });
      assert.equal(moved.fields[1]!.toString(), mine);
      assert.deepEqual(callsFor(theirs), ["ReEncrypt"]);
    });
  });

  describe("CLI", () => {
    // Asynchronous: the recording proxy lives in this process and must keep answering.
    const run = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
      sb.runAsync(args, { ...env, ...extra });

    /** Exit 9, the refusal naming the key and the three ways to allow it, and no KMS call. */
    const assertRefused = (r: { status: number; stderr: string }, key = theirs) => {
      assert.equal(r.status, 9, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `error: \\S+: aws-kms key ${key} is not allowed, so KMS was not asked to use it`,
        ),
      );
      assert.ok(r.stderr.includes(`\`-i aws-kms:${key}\``), r.stderr);
      assert.match(
        r.stderr,
        /TENSORSEAL_KMS_KEYS or `providers: aws-kms: keys:` in \.tensorseal\.yaml/,
      );
      assert.deepEqual(callsFor(key), [], "KMS never heard of the key");
    };

    test("every command that unwraps refuses an unlisted key without calling KMS", async () => {
      const before = sha(join(sb.dir, "theirs.tseal"));
      assertRefused(await run(["open", "theirs.tseal", "-o", "c.out"]));
      assert.ok(!existsSync(join(sb.dir, "c.out")));
      assertRefused(await run(["open", "theirs.tseal", "-o", "-"]));
      assertRefused(await run(["verify", "theirs.tseal"]));
      assertRefused(await run(["inspect", "theirs.tseal", "--verify"]));
      const { recipient } = JSON.parse((await run(["keygen", "-o", "id.txt", "--json"])).stdout);
      assertRefused(await run(["rewrap", "theirs.tseal", "--add-recipient", recipient]));
      assert.equal(sha(join(sb.dir, "theirs.tseal")), before, "the file is untouched");
      assertRefused(await run(["exec", "-m", "theirs.tseal", "--", "true"]));
      assert.deepEqual(rec.calls, []);
    });

    test("open-dir refuses a model directory sealed to an unlisted key", async () => {
      mkdirSync(join(sb.dir, "model"));
      writeFileSync(join(sb.dir, "model", "config.json"), "{}");
      writeFileSync(join(sb.dir, "model", "w.safetensors"), data);
      let r = await run(["seal-dir", "model", "-o", "model.sealed", "-r", `aws-kms:${theirs}`]);
      assert.equal(r.status, 0, r.stderr);
      rec.calls.length = 0;
      assertRefused(await run(["open-dir", "model.sealed", "-o", "model.out"]));
      assert.ok(!existsSync(join(sb.dir, "model.out")));
      r = await run(["open-dir", "model.sealed", "-o", "model.out", "-i", `aws-kms:${theirs}`]);
      assert.equal(r.status, 0, r.stderr);
    });

    test("a --to-latest campaign skips the unlisted stanza and rewraps through the keystore", async () => {
      let r = await run(["init"]);
      assert.equal(r.status, 0, r.stderr);
      r = await run([
        "seal",
        "w.bin",
        "-o",
        "camp.tseal",
        "-r",
        `aws-kms:${theirs}`,
        "-r",
        "kek:default",
      ]);
      assert.equal(r.status, 0, r.stderr);
      r = await run(["keys", "rotate", "default"]);
      assert.equal(r.status, 0, r.stderr);
      rec.calls.length = 0;
      r = await run([
        "rewrap",
        "--to-latest",
        "camp.tseal",
        "-i",
        `aws-kms:${mine}`,
        "--journal",
        "j.jsonl",
      ]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /rewrapped 1, already current 0, failed 0/);
      assert.deepEqual(rec.calls, [], "the stanza of the unlisted key was not sent to KMS");
    });

    test("-i aws-kms:KEY, TENSORSEAL_KMS_KEYS and .tensorseal.yaml each allow the key", async () => {
      let r = await run(["open", "theirs.tseal", "-o", "flag.out", "-i", `aws-kms:${theirs}`]);
      assert.equal(r.status, 0, r.stderr);
      r = await run(["open", "theirs.tseal", "-o", "env.out"], {
        TENSORSEAL_KMS_KEYS: `alias/mine,${theirs}`,
      });
      assert.equal(r.status, 0, r.stderr);
      const cfg = join(sb.dir, ".tensorseal.yaml");
      writeFileSync(cfg, `providers:\n  aws-kms:\n    keys:\n      - ${theirs}\n`);
      try {
        r = await run(["open", "theirs.tseal", "-o", "yaml.out"]);
        assert.equal(r.status, 0, r.stderr);
      } finally {
        writeFileSync(cfg, "creation_rules: []\n");
      }
      for (const f of ["flag.out", "env.out", "yaml.out"])
        assert.ok(readFileSync(join(sb.dir, f)).equals(data));
      assert.deepEqual(callsFor(theirs), ["Decrypt", "Decrypt", "Decrypt"]);
    });

    test("sources add up; a project's creation-rule keys count; only the named key is allowed", async () => {
      const cfg = join(sb.dir, ".tensorseal.yaml");
      try {
        writeFileSync(cfg, `providers:\n  aws-kms:\n    keys: [alias/mine]\n`);
        assertRefused(await run(["open", "theirs.tseal", "-o", "y1.out"]));
        assertRefused(await run(["open", "theirs.tseal", "-o", "y1.out", "-i", `aws-kms:${mine}`]));
        let r = await run(["open", "theirs.tseal", "-o", "y2.out"], {
          TENSORSEAL_KMS_KEYS: theirs,
        });
        assert.equal(r.status, 0, r.stderr);
        writeFileSync(
          cfg,
          `creation_rules:\n  - path_regex: '.*'\n    recipients: ['aws-kms:${theirs}']\n`,
        );
        r = await run(["open", "theirs.tseal", "-o", "y3.out"]);
        assert.equal(r.status, 0, r.stderr);
      } finally {
        writeFileSync(cfg, "creation_rules: []\n");
      }
    });

    test("a config owned by another user allows nothing (a notice says why)", {
      skip: process.getuid?.() !== 0 && "needs root to chown",
    }, async () => {
      const dir = join(sb.dir, "shared");
      mkdirSync(dir);
      const cfg = join(dir, ".tensorseal.yaml");
      writeFileSync(cfg, `providers:\n  aws-kms:\n    keys: ['${theirs}']\n`);
      chownSync(cfg, 4242, 4242);
      const r = spawnSync(
        process.execPath,
        [CLI, "open", "../theirs.tseal", "-o", "../other.out"],
        {
          cwd: dir,
          env: { ...sb.env, ...env },
          encoding: "utf8",
        },
      );
      assertRefused({ status: r.status ?? -1, stderr: r.stderr });
      assert.match(
        r.stderr,
        /\.tensorseal\.yaml is owned by uid 4242, not you: its provider keys are not allowed/,
      );
    });

    test("a bad entry is a usage error naming the file and line, or the variable", async () => {
      const cfg = join(sb.dir, ".tensorseal.yaml");
      try {
        writeFileSync(
          cfg,
          "providers:\n  aws-kms:\n    keys:\n      - 'arn:aws:kms:us-east-1:*:key/*'\n",
        );
        let r = await run(["open", "theirs.tseal", "-o", "bad.out"]);
        assert.equal(r.status, 2, r.stderr);
        assert.match(
          r.stderr,
          /\.tensorseal\.yaml:4: providers\.aws-kms\.keys: .*never in the account/,
        );
        writeFileSync(cfg, "providers:\n  gcp-kms:\n    keys: [x]\n");
        r = await run(["open", "theirs.tseal", "-o", "bad.out"]);
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, /\.tensorseal\.yaml:2: unknown provider "gcp-kms"/);
        writeFileSync(cfg, "creation_rules: []\n");
        r = await run(["open", "theirs.tseal", "-o", "bad.out"], { TENSORSEAL_KMS_KEYS: "*" });
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, /TENSORSEAL_KMS_KEYS: entry \*: a wildcard/);
        r = await run(["open", "theirs.tseal", "-o", "bad.out", "-i", "aws-kms:*"]);
        assert.equal(r.status, 2, r.stderr);
      } finally {
        writeFileSync(cfg, "creation_rules: []\n");
      }
      assert.deepEqual(rec.calls, []);
    });
  });
});
