/**
 * The AWS KMS provider against moto's server mode, started here on a free loopback port
 * (127.0.0.1 only; no other network). Without moto the suite is skipped with the reason, unless
 * TENSORSEAL_REQUIRE_ALL=1 (CI), where a missing component fails the run.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { openFile, rewrapFile, sealFile } from "../../src/engine/index.js";
import { isTensorSealError } from "../../src/format/errors.js";
import type { Stanza } from "../../src/format/stanza.js";
import {
  AwsKmsProvider,
  kmsEncryptionContext,
  reEncryptKmsStanza,
} from "../../src/keys/kms/provider.js";
import {
  AWS_KMS_PROVIDER,
  describeKmsStanza,
  KMS_STANZA,
  parseProviderRecipient,
  providerIdentities,
} from "../../src/keys/provider.js";
import { parseIdentityFile, parseRecipient } from "../../src/keys/recipients.js";
import { generateX25519Identity } from "../../src/keys/x25519.js";
import { sandbox } from "../cli/helpers.js";
import {
  freePort,
  MOTO_REGION,
  motoEnv,
  motoServer,
  startMoto as startMotoAt,
  stopMoto,
} from "./moto.js";

const REGION = MOTO_REGION;
const MOTO = motoServer();
const why = MOTO ? null : "moto_server not found (run scripts/setup-test-deps.sh)";
if (why && process.env.TENSORSEAL_REQUIRE_ALL === "1") {
  test("moto is available (TENSORSEAL_REQUIRE_ALL=1)", () => assert.fail(why));
}

const startMoto = (port: number) => startMotoAt(MOTO!, port);
const stop = stopMoto;

/** A loopback server that answers every KMS call with one error, as KMS puts it on the wire. */
async function kmsErrorStub(type: string): Promise<{ endpoint: string; close(): Promise<void> }> {
  const srv = createHttpServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(400, {
        "content-type": "application/x-amz-json-1.1",
        "x-amzn-requestid": "stub",
      });
      res.end(JSON.stringify({ __type: type, message: `stub ${type}` }));
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () => new Promise((r) => srv.close(() => r())),
  };
}

const rejectsWith = (code: string, pattern: RegExp) => (e: unknown) => {
  assert.ok(isTensorSealError(e), `expected a TensorSealError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.match(e.message, pattern);
  return true;
};

describe("aws-kms provider (moto server on loopback)", { skip: why ?? false }, () => {
  let server: ChildProcess | null = null;
  let endpoint: string;
  let sdk: KMSClient;
  let provider: AwsKmsProvider;
  let dir: string;
  let key1: { arn: string; id: string };
  let key2: { arn: string; id: string };
  const data = randomBytes(300_000);

  async function createKey(description: string) {
    const out = await sdk.send(new CreateKeyCommand({ Description: description }));
    return { arn: out.KeyMetadata!.Arn!, id: out.KeyMetadata!.KeyId! };
  }

  before(async () => {
    const port = await freePort();
    endpoint = `http://127.0.0.1:${port}`;
    // moto accepts any credentials; setting them also keeps the SDK off the metadata service.
    Object.assign(process.env, motoEnv({ TENSORSEAL_KMS_ENDPOINT: endpoint }));
    server = await startMoto(port);
    sdk = new KMSClient({ region: REGION, endpoint });
    provider = new AwsKmsProvider({ region: REGION, endpoint });
    key1 = await createKey("tensorseal test key 1");
    key2 = await createKey("tensorseal test key 2");
    await sdk.send(
      new CreateAliasCommand({ AliasName: "alias/tseal-models", TargetKeyId: key1.id }),
    );
    dir = mkdtempSync(join(tmpdir(), "tensorseal-kms-"));
    writeFileSync(join(dir, "weights.bin"), data);
  });

  after(async () => {
    sdk?.destroy();
    provider?.close();
    await stop(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("Encrypt wraps under the key ARN with a per-stanza binding in the encryption context", async () => {
    const fileKey = randomBytes(32);
    const s = await provider.wrap(fileKey, "alias/tseal-models");
    assert.equal(s.type, KMS_STANZA);
    assert.equal(s.fields.length, 4);
    assert.equal(s.fields[0]!.toString(), AWS_KMS_PROVIDER);
    assert.equal(s.fields[1]!.toString(), key1.arn, "the stanza records the ARN, not the alias");
    assert.equal(s.fields[2]!.length, 16);
    assert.deepEqual(kmsEncryptionContext(s.fields[2]!), {
      "tensorseal:stanza": "v1",
      "tensorseal:binding": s.fields[2]!.toString("hex"),
    });
    assert.ok((await provider.unwrap(s))!.equals(fileKey));
    assert.equal(
      describeKmsStanza(s),
      `kms aws-kms ${key1.arn} binding ${s.fields[2]!.toString("hex")}`,
    );
    const again = await provider.wrap(fileKey, key1.arn);
    assert.ok(!again.fields[2]!.equals(s.fields[2]!), "each stanza draws its own binding");
  });

  test("seals and opens a file through aws-kms: recipient strings and env configuration", async () => {
    const sealed = join(dir, "w.tseal");
    const recipient = parseProviderRecipient("aws-kms:alias/tseal-models")!;
    await sealFile(join(dir, "weights.bin"), sealed, { recipients: [recipient], workers: 0 });
    await openFile(sealed, join(dir, "w.out"), {
      identities: providerIdentities({ awsKms: [key1.arn, key2.arn] }),
      workers: 0,
    });
    assert.ok(readFileSync(join(dir, "w.out")).equals(data));
  });

  test("GenerateDataKey draws the file key when KMS comes first; the other recipients wrap it", async () => {
    const drawn = await provider.generateDataKey(key1.arn);
    assert.equal(drawn.fileKey.length, 32);
    assert.ok((await provider.unwrap(drawn.stanza))!.equals(drawn.fileKey));

    const { identity, recipient } = generateX25519Identity();
    const sealed = join(dir, "g.tseal");
    await sealFile(join(dir, "weights.bin"), sealed, {
      recipients: [parseProviderRecipient(`aws-kms:${key1.arn}`)!, parseRecipient(recipient)],
      workers: 0,
    });
    // Each recipient alone opens the file: both stanzas carry the one KMS-drawn file key.
    await openFile(sealed, join(dir, "g1.out"), {
      identities: providerIdentities({ awsKms: [key1.arn, key2.arn] }),
      workers: 0,
    });
    await openFile(sealed, join(dir, "g2.out"), {
      identities: parseIdentityFile(identity),
      workers: 0,
    });
    assert.ok(readFileSync(join(dir, "g1.out")).equals(data));
    assert.ok(readFileSync(join(dir, "g2.out")).equals(data));
  });

  test("ReEncrypt moves a stanza to a second key; a rewrap through it keeps the file openable", async () => {
    const fileKey = randomBytes(32);
    const s = await provider.wrap(fileKey, key1.arn);
    const moved = await reEncryptKmsStanza(s, key2.arn, { awsKms: [key1.arn] }, provider);
    assert.equal(moved.fields[1]!.toString(), key2.arn);
    assert.ok(!moved.fields[2]!.equals(s.fields[2]!), "a fresh binding");
    assert.ok((await provider.unwrap(moved))!.equals(fileKey));

    const sealed = join(dir, "r.tseal");
    await sealFile(join(dir, "weights.bin"), sealed, {
      recipients: [parseProviderRecipient(`aws-kms:${key1.arn}`)!],
      workers: 0,
    });
    const identities = providerIdentities({ awsKms: [key1.arn, key2.arn] });
    await rewrapFile(sealed, {
      identities,
      edit: async (stanzas) =>
        Promise.all(
          stanzas.map((x) => reEncryptKmsStanza(x, key2.id, { awsKms: [key1.arn] }, provider)),
        ),
    });
    await openFile(sealed, join(dir, "r.out"), { identities, workers: 0 });
    assert.ok(readFileSync(join(dir, "r.out")).equals(data));
  });

  test("a wrong encryption context or a modified ciphertext is E_DECRYPT", async () => {
    const s = await provider.wrap(randomBytes(32), key1.arn);
    const wrongContext: Stanza = { type: s.type, fields: s.fields.map((f) => Buffer.from(f)) };
    wrongContext.fields[2]![0]! ^= 1;
    await assert.rejects(
      provider.unwrap(wrongContext),
      rejectsWith("E_DECRYPT", /aws-kms: the stanza does not open under key .*encryption context/),
    );
    const badBlob: Stanza = { type: s.type, fields: s.fields.map((f) => Buffer.from(f)) };
    badBlob.fields[3]![badBlob.fields[3]!.length - 1]! ^= 1;
    await assert.rejects(provider.unwrap(badBlob), (e: unknown) =>
      isTensorSealError(e, "E_DECRYPT"),
    );
  });

  test("a disabled key fails closed with E_PROVIDER naming the key", async () => {
    // moto 5.2.5 records DisableKey but still encrypts and decrypts with the key, so the answer
    // real KMS gives (DisabledException, KMSInvalidStateException for pending deletion,
    // AccessDeniedException) comes from a loopback stub speaking KMS's JSON error protocol.
    const s = await provider.wrap(randomBytes(32), key2.arn);
    const cases: [string, RegExp][] = [
      ["DisabledException", new RegExp(`Decrypt failed: key ${key2.arn} is disabled: enable it`)],
      ["KMSInvalidStateException", /not usable in its state \(pending deletion/],
      [
        "AccessDeniedException",
        /access to key .* denied: the key policy or IAM must allow kms:Decrypt/,
      ],
    ];
    for (const [type, pattern] of cases) {
      const stub = await kmsErrorStub(type);
      const p = new AwsKmsProvider({ region: REGION, endpoint: stub.endpoint, maxAttempts: 1 });
      try {
        await assert.rejects(p.unwrap(s), rejectsWith("E_PROVIDER", pattern));
      } finally {
        p.close();
        await stub.close();
      }
    }
  });

  test("a missing key is E_PROVIDER", async () => {
    const missing = `arn:aws:kms:${REGION}:123456789012:key/00000000-0000-4000-8000-000000000000`;
    await assert.rejects(
      provider.wrap(randomBytes(32), missing),
      rejectsWith("E_PROVIDER", /not found|denied/),
    );
  });

  test("the CLI seals with -r aws-kms:ALIAS; open finds KMS from the header once the key is allowed", () => {
    const s = sandbox();
    try {
      writeFileSync(join(s.dir, "m.bin"), data);
      const env = motoEnv({ TENSORSEAL_KMS_ENDPOINT: endpoint });
      let r = s.run(["seal", "m.bin", "-r", "aws-kms:alias/tseal-models"], { env });
      assert.equal(r.status, 0, r.stderr);
      r = s.run(["open", "m.bin.tseal", "-o", "m0.out"], { env });
      assert.equal(r.status, 9, r.stderr);
      assert.match(r.stderr, new RegExp(`aws-kms key ${key1.arn} is not allowed`));
      r = s.run(["open", "m.bin.tseal", "-o", "m.out"], {
        env: { ...env, TENSORSEAL_KMS_KEYS: "alias/tseal-models" },
      });
      assert.equal(r.status, 0, r.stderr);
      assert.ok(readFileSync(join(s.dir, "m.out")).equals(data));
    } finally {
      s.cleanup();
    }
  });

  test("a stopped server fails closed: E_PROVIDER, cannot reach KMS", async () => {
    const s = await provider.wrap(randomBytes(32), key1.arn);
    await stop(server);
    server = null;
    const offline = new AwsKmsProvider({ region: REGION, endpoint, maxAttempts: 1 });
    try {
      await assert.rejects(
        offline.unwrap(s),
        rejectsWith(
          "E_PROVIDER",
          /aws-kms: Decrypt failed: cannot reach KMS at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/,
        ),
      );
    } finally {
      offline.close();
    }
  });
});
