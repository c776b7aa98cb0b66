import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, linkSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { closeWorkers, openFile, resealFile, sealFile } from "../../src/engine/index.js";
import { nativeGcm } from "../../src/engine/native-gcm.js";
import {
  checkCommitment,
  deriveChunkKeys,
  PAYLOAD_PREFIX_SIZE,
  SALT_SIZE,
} from "../../src/format/chunked.js";
import { payloadInputKey } from "../../src/format/filekey.js";
import { type ParsedHeader, verifyHeader } from "../../src/format/header.js";
import { readHeader } from "../../src/format/message.js";
import { payloadContext } from "../../src/format/payload.js";
import { unlockFileKey } from "../../src/format/unlock.js";
import { codeOf, data, makeKey, tempDir, tempOutputs } from "./helpers.js";

after(() => closeWorkers());

const alice = makeKey("alice");
const bob = makeKey("bob");

function prefixOf(file: Buffer, h: ParsedHeader): Buffer {
  return file.subarray(h.headerLength, h.headerLength + PAYLOAD_PREFIX_SIZE);
}

for (const [size, workers] of [
  [3 * 16384 + 7, 0],
  [0, 0],
  [9 << 20, 2],
] as const) {
  test(`reseal ${size} bytes (${workers} workers): a fresh key, same plaintext and descriptor`, async (t) => {
    const dir = tempDir(t);
    const plain = data(size);
    const input = join(dir, "p");
    writeFileSync(input, plain);
    const path = join(dir, "m.tseal");
    await sealFile(input, path, {
      recipients: [alice.recipient],
      chunkSize: 16384,
      contentType: "application/x-test",
      context: { tenant: "acme" },
      labels: { stage: "prod" },
      slotCapacity: 12288,
    });
    chmodSync(path, 0o640);
    const before = readFileSync(path);
    const oldHeader = readHeader(before);
    const oldKey = await unlockFileKey(oldHeader, [alice.identity]);

    const r = await resealFile(path, {
      identities: [alice.identity],
      recipients: async () => [alice.recipient, bob.recipient],
      workers,
    });
    const afterBytes = readFileSync(path);
    const newHeader = readHeader(afterBytes);
    assert.equal(r.sealedLength, afterBytes.length);
    assert.equal(r.plaintextLength, size);
    const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
    assert.equal(r.oldHeaderDigest, sha(before.subarray(0, oldHeader.headerLength)));
    assert.equal(r.newHeaderDigest, sha(afterBytes.subarray(0, newHeader.headerLength)));
    assert.notEqual(r.oldHeaderDigest, r.newHeaderDigest);
    assert.deepEqual(r.recipients, [alice.recipient.id, bob.recipient.id]);
    // Same descriptor (length, chunk size, content type, context, labels) and slot capacity.
    assert.deepEqual(newHeader.descriptorBytes, oldHeader.descriptorBytes);
    assert.equal(newHeader.slotCapacity, 12288);
    assert.equal(statSync(path).mode & 0o777, 0o640);
    // New salt and commitment.
    const oldPrefix = prefixOf(before, oldHeader);
    const newPrefix = prefixOf(afterBytes, newHeader);
    assert.notDeepEqual(newPrefix.subarray(0, SALT_SIZE), oldPrefix.subarray(0, SALT_SIZE));
    assert.notDeepEqual(newPrefix.subarray(SALT_SIZE), oldPrefix.subarray(SALT_SIZE));
    // The old file key neither authenticates the new header nor derives the new payload keys.
    assert.throws(() => verifyHeader(newHeader, oldKey), /MAC|header/i);
    const input2 = payloadInputKey(oldKey);
    const keys = deriveChunkKeys(
      input2,
      newPrefix.subarray(0, SALT_SIZE),
      payloadContext(newHeader.descriptorBytes),
      16384,
    );
    assert.throws(() => checkCommitment(keys, newPrefix.subarray(SALT_SIZE)), /commitment/);
    // Both recipients open it, to the same plaintext.
    for (const who of [alice, bob]) {
      const out = join(dir, `out-${who.name}`);
      await openFile(path, out, { identities: [who.identity], expectContext: { tenant: "acme" } });
      assert.deepEqual(readFileSync(out), plain);
    }
    assert.deepEqual(tempOutputs(dir), []);
  });
}

test("reseal refuses a tampered payload and leaves the file untouched", async (t) => {
  const dir = tempDir(t);
  const input = join(dir, "p");
  writeFileSync(input, data(6 << 20));
  const path = join(dir, "m.tseal");
  await sealFile(input, path, { recipients: [alice.recipient], chunkSize: 16384 });
  const bytes = readFileSync(path);
  bytes[bytes.length - 100]! ^= 1; // a late chunk: earlier batches were already resealed
  writeFileSync(path, bytes);
  for (const workers of [0, 2]) {
    const err = await resealFile(path, {
      identities: [alice.identity],
      recipients: async () => [bob.recipient],
      workers,
    }).catch((e) => e);
    assert.equal(err.code, "E_DECRYPT");
    assert.match(err.message, /m\.tseal/);
    assert.deepEqual(readFileSync(path), bytes);
    assert.deepEqual(tempOutputs(dir), []);
  }
});

test("reseal without a key that opens the file changes nothing", async (t) => {
  const dir = tempDir(t);
  const input = join(dir, "p");
  writeFileSync(input, data(1000));
  const path = join(dir, "m.tseal");
  await sealFile(input, path, { recipients: [alice.recipient] });
  const bytes = readFileSync(path);
  const code = await codeOf(
    resealFile(path, { identities: [bob.identity], recipients: async () => [bob.recipient] }),
  );
  assert.equal(code, "E_NO_IDENTITY");
  assert.deepEqual(readFileSync(path), bytes);
});

test("a file with another hard link is refused: that name would keep the old version", async (t) => {
  const dir = tempDir(t);
  const input = join(dir, "p");
  writeFileSync(input, data(1000));
  const path = join(dir, "m.tseal");
  await sealFile(input, path, { recipients: [alice.recipient] });
  linkSync(path, join(dir, "other-name.tseal"));
  const bytes = readFileSync(path);
  const err = await resealFile(path, {
    identities: [alice.identity],
    recipients: async () => [alice.recipient],
  }).catch((e) => e);
  assert.equal(err.code, "E_USAGE");
  assert.match(err.message, /2 hard links/);
  assert.deepEqual(readFileSync(path), bytes);
});

// The engine picks its cipher path once per process: the node:crypto one runs in a child.
test("every case above also passes on the node:crypto path (TENSORSEAL_NATIVE=0)", (t) => {
  if (!nativeGcm) return t.skip("this process already runs the node:crypto path");
  const env: NodeJS.ProcessEnv = { ...process.env, TENSORSEAL_NATIVE: "0" };
  env.TENSORSEAL_REQUIRE_ALL = "0";
  delete env.NODE_TEST_CONTEXT; // else the child reports to this runner, not on stdout
  const r = spawnSync(
    process.execPath,
    ["--test", "--test-reporter=tap", fileURLToPath(import.meta.url)],
    {
      env,
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /# pass 6\n/);
  assert.match(r.stdout, /# skipped 1\n/);
});
