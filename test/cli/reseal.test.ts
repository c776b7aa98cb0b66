/**
 * `tensorseal reseal`: a fresh file key for files whose old one may be known. The old file key
 * (taken from the old header with the recipient's identity, as anyone holding it could) must
 * open nothing of the new file; the recipients must; the plaintext and descriptor must not
 * change. A tampered file is refused, named and left as it was. A SIGKILL mid-campaign leaves
 * every file old-and-valid or new-and-valid, and a rerun finishes the campaign.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { closeWorkers, openFile, sealFile } from "../../src/engine/index.js";
import { PAYLOAD_PREFIX_SIZE, SALT_SIZE } from "../../src/format/chunked.js";
import { type ParsedHeader, parseHeader, verifyHeader } from "../../src/format/header.js";
import { openMessage } from "../../src/format/message.js";
import type { Identity } from "../../src/format/stanza.js";
import { unlockFileKey } from "../../src/format/unlock.js";
import { parseKekStanza } from "../../src/keys/kek.js";
import { parseIdentityFile, parseRecipient } from "../../src/keys/recipients.js";
import { CLI, type Sandbox, sandbox } from "./helpers.js";
import { openPaths, start, waitFor } from "./interrupt-helpers.js";

function keygen(s: Sandbox, name: string): { recipient: string; identity: Identity } {
  const path = join(s.dir, `${name}.key`);
  const r = s.run(["keygen", "-o", path, "--json"]);
  assert.equal(r.status, 0, r.stderr);
  const [identity] = parseIdentityFile(readFileSync(path, "utf8"));
  return { recipient: JSON.parse(r.stdout.toString()).recipient, identity: identity! };
}

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function headerOf(bytes: Buffer): ParsedHeader {
  return parseHeader(bytes);
}

function headerDigestOf(bytes: Buffer): string {
  return sha256(bytes.subarray(0, headerOf(bytes).headerLength));
}

function payloadPrefix(bytes: Buffer): Buffer {
  const h = headerOf(bytes);
  return bytes.subarray(h.headerLength, h.headerLength + PAYLOAD_PREFIX_SIZE);
}

function temps(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.includes("tseal-tmp"));
}

describe("tensorseal reseal", () => {
  let s: Sandbox;
  let alice: { recipient: string; identity: Identity };
  let bob: { recipient: string; identity: Identity };

  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    alice = keygen(s, "alice");
    bob = keygen(s, "bob");
  });
  after(async () => {
    s.cleanup();
    await closeWorkers();
  });

  function sealed(name: string, size = 200_000, dir = s.dir): { path: string; plain: Buffer } {
    const plain = randomBytes(size);
    const input = join(dir, `${name}.bin`);
    writeFileSync(input, plain);
    const path = join(dir, `${name}.tseal`);
    const r = s.run([
      "seal",
      input,
      "-o",
      path,
      "-r",
      alice.recipient,
      "-k",
      "default",
      "-c",
      "tenant=acme",
      "-l",
      "stage=prod",
      "--content-type",
      "application/x-test",
      "--chunk-size",
      "64KiB",
    ]);
    assert.equal(r.status, 0, r.stderr);
    return { path, plain };
  }

  /** In process (the CLI's open is tested elsewhere; a spawn costs seconds on a busy host). */
  async function opensTo(path: string, identity: Identity, plain: Buffer): Promise<void> {
    const out = join(s.dir, `opened-${randomBytes(4).toString("hex")}`);
    await openFile(path, out, { identities: [identity], workers: 0 });
    assert.deepEqual(readFileSync(out), plain);
  }

  /** Sealed to alice in process, as `seal -r ALICE` would: the crash test needs many files. */
  async function sealedToAlice(name: string, size: number, dir: string) {
    const plain = randomBytes(size);
    const input = join(dir, `${name}.bin`);
    writeFileSync(input, plain);
    const path = join(dir, `${name}.tseal`);
    await sealFile(input, path, { recipients: [parseRecipient(alice.recipient)], workers: 0 });
    return { path, plain };
  }

  test("the old file key opens nothing of the new file; the recipients do", async () => {
    const { path, plain } = sealed("m");
    const before = readFileSync(path);
    const oldHeader = headerOf(before);
    const oldKey = await unlockFileKey(oldHeader, [alice.identity]);

    const r = s.run(["reseal", path, "-i", join(s.dir, "alice.key"), "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout.toString());
    const now = readFileSync(path);
    const newHeader = headerOf(now);
    assert.deepEqual(report.files, [
      {
        file: path,
        outcome: "resealed",
        oldHeaderDigest: headerDigestOf(before),
        newHeaderDigest: headerDigestOf(now),
        recipients: ["kek:default", alice.recipient],
      },
    ]);
    assert.equal(report.resealed, 1);
    assert.equal(report.failed, 0);
    assert.equal(report.resumed, 0);
    assert.deepEqual(report.skippedFiles, []);

    // The old key: no longer authenticates the header, no longer opens the payload.
    assert.throws(() => verifyHeader(newHeader, oldKey));
    assert.throws(() => openMessage(now, newHeader, oldKey));
    assert.deepEqual(openMessage(before, oldHeader, oldKey), plain); // it did open the old one
    // New salt, new commitment; same descriptor (context, labels, content type, chunk size).
    const [a, b] = [payloadPrefix(before), payloadPrefix(now)];
    assert.notDeepEqual(b.subarray(0, SALT_SIZE), a.subarray(0, SALT_SIZE));
    assert.notDeepEqual(b.subarray(SALT_SIZE), a.subarray(SALT_SIZE));
    assert.deepEqual(newHeader.descriptorBytes, oldHeader.descriptorBytes);
    assert.equal(newHeader.descriptor.chunkSize, 65536);
    // Same recipients: the kek key and alice's x25519 tag, in the same order.
    assert.deepEqual(
      newHeader.stanzas.map((st) => st.type),
      oldHeader.stanzas.map((st) => st.type),
    );
    const kek = newHeader.stanzas.find((st) => st.type === "kek")!;
    assert.equal(parseKekStanza(kek).name, "default");
    const tag = (h: ParsedHeader) => h.stanzas.find((st) => st.type === "x25519")!.fields[0];
    assert.deepEqual(tag(newHeader), tag(oldHeader));
    // Alice opens it (identity), the keystore opens it (kek), to the same plaintext.
    await opensTo(path, alice.identity, plain);
    const viaKek = join(s.dir, "via-kek");
    assert.equal(s.run(["open", path, "-o", viaKek]).status, 0);
    assert.deepEqual(readFileSync(viaKek), plain);
    const newKey = await unlockFileKey(newHeader, [alice.identity]);
    assert.notDeepEqual(newKey, oldKey);
    assert.deepEqual(temps(s.dir), []);
  });

  test("-r names the new recipients exactly; text report lists both digests", async () => {
    const { path, plain } = sealed("swap");
    const oldDigest = headerDigestOf(readFileSync(path));
    const r = s.run(["reseal", path, "-i", join(s.dir, "alice.key"), "-r", bob.recipient]);
    assert.equal(r.status, 0, r.stderr);
    const newDigest = headerDigestOf(readFileSync(path));
    assert.match(r.stderr, new RegExp(`resealed ${path}: ${oldDigest} -> ${newDigest}`));
    assert.match(r.stderr, /1 file: resealed 1, failed 0/);
    await opensTo(path, bob.identity, plain);
    await assert.rejects(opensTo(path, alice.identity, plain), { code: "E_NO_IDENTITY" });
  });

  test("an x25519 recipient not given is not dropped: the file fails, untouched", () => {
    const { path } = sealed("keep");
    const bytes = readFileSync(path);
    const r = s.run(["reseal", path]); // opened by the keystore, alice's public key unknown
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--known-recipient/);
    assert.deepEqual(readFileSync(path), bytes);
    const ok = s.run(["reseal", path, "--known-recipient", alice.recipient]);
    assert.equal(ok.status, 0, ok.stderr);
  });

  test("a tampered file is refused, named and left untouched; the others are resealed", async () => {
    const dir = join(s.dir, "tamper");
    mkdirSync(dir);
    const good = sealed("good", 300_000, dir);
    const bad = sealed("bad", 300_000, dir);
    const bytes = readFileSync(bad.path);
    bytes[bytes.length - 10]! ^= 0x40; // the last chunk: every earlier chunk opens
    writeFileSync(bad.path, bytes);
    const goodBefore = readFileSync(good.path);

    const one = s.run(["reseal", bad.path, "-i", join(s.dir, "alice.key")]);
    assert.equal(one.status, 5, one.stderr);
    assert.match(one.stderr, new RegExp(`FAILED ${bad.path}: .*authentication`));
    assert.deepEqual(readFileSync(bad.path), bytes);

    const journal = join(s.dir, "tamper.jsonl");
    const all = s.run(["reseal", dir, "-i", join(s.dir, "alice.key"), "--journal", journal]);
    assert.equal(all.status, 1, all.stderr);
    assert.match(all.stderr, /2 files: resealed 1, failed 1; skipped 2/);
    assert.deepEqual(readFileSync(bad.path), bytes);
    assert.notDeepEqual(readFileSync(good.path), goodBefore);
    await opensTo(good.path, alice.identity, good.plain);
    assert.ok(existsSync(journal), "a campaign with failures keeps its journal");
    assert.deepEqual(temps(dir), []);
  });

  test("a passphrase recipient is kept with the passphrase of the run", () => {
    const pass = join(s.dir, "pass.txt");
    writeFileSync(pass, "correct horse battery staple\n");
    const input = join(s.dir, "pw.bin");
    const plain = randomBytes(50_000);
    writeFileSync(input, plain);
    const path = join(s.dir, "pw.tseal");
    assert.equal(s.run(["seal", input, "-o", path, "--passphrase-file", pass]).status, 0);
    const before = readFileSync(path);
    const r = s.run(["reseal", path, "--passphrase-file", pass]);
    assert.equal(r.status, 0, r.stderr);
    const now = readFileSync(path);
    assert.deepEqual(
      headerOf(now).stanzas.map((st) => st.type),
      ["passphrase"],
    );
    assert.notDeepEqual(
      headerOf(now).stanzas[0]!.fields[0],
      headerOf(before).stanzas[0]!.fields[0],
    );
    assert.notDeepEqual(payloadPrefix(now), payloadPrefix(before));
    const out = join(s.dir, "pw.out");
    const o = s.run(["open", path, "-o", out, "--passphrase-file", pass]);
    assert.equal(o.status, 0, o.stderr);
    assert.deepEqual(readFileSync(out), plain);
  });

  test("no path is a usage error", () => {
    const r = s.run(["reseal"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /no file given/);
  });

  test("SIGKILL mid-campaign: every file old or new and valid; a rerun finishes", async () => {
    const dir = join(s.dir, "fleet");
    mkdirSync(dir);
    const files = [];
    for (let i = 0; i < 10; i++) files.push(await sealedToAlice(`f${i}`, 3 << 20, dir));
    const original = new Map(files.map((f) => [f.path, headerDigestOf(readFileSync(f.path))]));
    const journal = join(s.dir, "fleet.jsonl");
    // -i opens the files; its public half keeps alice's x25519 stanza.
    const args = [CLI, "reseal", dir, "-i", join(s.dir, "alice.key"), "--journal", journal];
    const child = spawn(process.execPath, [...args, "--concurrency", "1"], {
      env: s.env,
      cwd: s.dir,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    let done = false;
    const exited = new Promise((resolve) =>
      child.on("close", (code, signal) => {
        done = true;
        resolve(code ?? signal);
      }),
    );
    // Kill once the journal shows three files about to be replaced (header line, 3 entries).
    const deadline = Date.now() + 120_000;
    while (!done && Date.now() < deadline) {
      const lines = existsSync(journal) ? readFileSync(journal, "utf8").split("\n").length : 0;
      if (lines >= 5) break;
      await delay(5);
    }
    const endedFirst = done;
    child.kill("SIGKILL");
    const how = await exited;
    let resealedBeforeCrash = 0;
    for (const f of files) {
      const digest = headerDigestOf(readFileSync(f.path));
      if (digest !== original.get(f.path)) resealedBeforeCrash++;
      await opensTo(f.path, alice.identity, f.plain); // old or new, always valid
    }
    assert.equal(
      endedFirst,
      false,
      `the campaign ended (${how}) before it could be killed: ${stderr}`,
    );
    assert.ok(resealedBeforeCrash >= 2, `resealed before the crash: ${resealedBeforeCrash}`);
    assert.ok(resealedBeforeCrash < files.length, "the kill came too late to test a resume");

    const rerun = s.run([...args.slice(1), "--json"]);
    assert.equal(rerun.status, 0, rerun.stderr);
    const report = JSON.parse(rerun.stdout.toString());
    assert.equal(report.resealed, files.length);
    assert.ok(report.resumed >= 2, `resumed: ${report.resumed}`);
    for (const entry of report.files) {
      assert.equal(entry.outcome, "resealed");
      assert.equal(entry.oldHeaderDigest, original.get(entry.file), entry.file);
      assert.equal(entry.newHeaderDigest, headerDigestOf(readFileSync(entry.file)));
    }
    for (const f of files) await opensTo(f.path, alice.identity, f.plain);
    assert.ok(!existsSync(journal), "the journal is deleted once the campaign is done");
    assert.deepEqual(temps(dir), []);
  });

  for (const [sig, code, env, temp] of [
    ["SIGINT", 130, {}, /\/#\d+ \(deleted\)$/],
    ["SIGTERM", 143, { TENSORSEAL_NATIVE: "0" }, /\.tseal-tmp-/],
  ] as const) {
    test(`${sig} mid-reseal: exit ${code}, the old file intact, no temp left`, async () => {
      const dir = join(s.dir, `interrupt-${sig}`);
      mkdirSync(dir);
      const f = await sealedToAlice("big", 96 << 20, dir);
      const bytes = readFileSync(f.path);
      const before = readdirSync(dir);
      const journal = join(s.dir, `interrupt-${sig}.jsonl`);
      const args = ["reseal", f.path, "-i", join(s.dir, "alice.key"), "--journal", journal];
      const run = start(s, args, env);
      const out = await waitFor("the new file being written", () =>
        openPaths(run.child.pid!, dir).find((p) => p.path !== f.path && p.size > 0),
      );
      assert.match(out.path, temp);
      run.child.kill(sig);
      assert.equal(await run.exited, code, run.stderr());
      assert.deepEqual(readdirSync(dir), before);
      assert.ok(readFileSync(f.path).equals(bytes), "the old file is untouched");
    });
  }
});
