import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createReadStream, createWriteStream, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  closeWorkers,
  openFile,
  openStream,
  sealFile,
  sealStream,
  verifyFile,
} from "../../src/engine/index.js";
import { workerPool } from "../../src/engine/pool.js";
import { openMessage, readHeader, sealMessage } from "../../src/format/message.js";
import type { Recipient, Stanza } from "../../src/format/stanza.js";
import { unlockFileKey } from "../../src/format/unlock.js";
import { data, makeKey, tempDir, tempOutputs } from "./helpers.js";

after(() => closeWorkers());

const alice = makeKey("alice");

async function openWithMessage(sealedPath: string): Promise<Buffer> {
  const file = readFileSync(sealedPath);
  const header = readHeader(file);
  const fileKey = await unlockFileKey(header, [alice.identity]);
  return openMessage(file, header, fileKey);
}

for (const chunkSize of [16384, 1 << 20]) {
  const sizes = [0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3 * chunkSize + 7];
  test(`file and stream round trips, chunk size ${chunkSize}`, async (t) => {
    const dir = tempDir(t);
    for (const size of sizes) {
      const plain = data(size);
      const input = join(dir, `p${size}`);
      writeFileSync(input, plain);
      const viaFile = join(dir, `f${size}.tseal`);
      const viaStream = join(dir, `s${size}.tseal`);
      const r = await sealFile(input, viaFile, { recipients: [alice.recipient], chunkSize });
      assert.equal(r.descriptor.plaintextLength, size);
      assert.equal(readFileSync(viaFile).length, r.sealedLength);
      await sealStream(createReadStream(input), createWriteStream(viaStream), {
        recipients: [alice.recipient],
        chunkSize,
      });
      assert.deepEqual(await openWithMessage(viaFile), plain, `openMessage file ${size}`);
      assert.deepEqual(await openWithMessage(viaStream), plain, `openMessage stream ${size}`);
      for (const sealed of [viaFile, viaStream]) {
        const outFile = join(dir, "out-file");
        const o = await openFile(sealed, outFile, { identities: [alice.identity] });
        assert.equal(o.plaintextLength, size);
        assert.deepEqual(readFileSync(outFile), plain, `openFile ${sealed}`);
        const outStream = join(dir, "out-stream");
        await openStream(createReadStream(sealed), createWriteStream(outStream), {
          identities: [alice.identity],
        });
        assert.deepEqual(readFileSync(outStream), plain, `openStream ${sealed}`);
        const v = await verifyFile(sealed, { identities: [alice.identity] });
        assert.equal(v.plaintextLength, size);
      }
      assert.deepEqual(tempOutputs(dir), []);
    }
  });
}

/** A recipient that always yields the same stanza, so whole files can be compared byte for byte. */
function fixedRecipient(stanza: Stanza): Recipient {
  return { id: "fixed", wrap: async () => stanza, matches: () => false };
}

test("parallel seal equals the single-threaded reference byte for byte", async (t) => {
  const dir = tempDir(t);
  const plain = data(9 * (1 << 20) + 12345);
  const input = join(dir, "plain");
  writeFileSync(input, plain);
  const fileKey = Buffer.alloc(32, 7);
  const salt = Buffer.alloc(24, 9);
  const stanza = await alice.recipient.wrap(fileKey);
  for (const chunkSize of [16384, 1 << 20]) {
    const reference = sealMessage(plain, fileKey, [stanza], { chunkSize }, { salt });
    for (const workers of [0, 1, 2, 3]) {
      await closeWorkers();
      const out = join(dir, `w${workers}-${chunkSize}.tseal`);
      await sealFile(input, out, {
        recipients: [fixedRecipient(stanza)],
        chunkSize,
        workers,
        fileKey,
        salt,
      });
      assert.ok(readFileSync(out).equals(reference), `workers ${workers}, chunk ${chunkSize}`);
      if (workers > 0) assert.ok(workerPool.size > 0, "the pool ran the parallel path");
      if (workers === 2) assert.ok((await openWithMessage(out)).equals(plain), "openMessage");
      const opened = join(dir, `o${workers}`);
      await openFile(out, opened, { identities: [alice.identity], workers: 2 });
      assert.ok(readFileSync(opened).equals(plain));
    }
  }
});

test("parallel, inline and stream paths open each other's output", async (t) => {
  const dir = tempDir(t);
  const plain = data(6 * (1 << 20) + 3);
  const input = join(dir, "plain");
  writeFileSync(input, plain);
  const sealedPar = join(dir, "par.tseal");
  const sealedStream = join(dir, "stream.tseal");
  await sealFile(input, sealedPar, { recipients: [alice.recipient], workers: 2, chunkSize: 65536 });
  await sealStream(createReadStream(input), createWriteStream(sealedStream), {
    recipients: [alice.recipient],
    chunkSize: 65536,
  });
  for (const sealed of [sealedPar, sealedStream]) {
    for (const workers of [0, 2]) {
      const out = join(dir, `out-${workers}`);
      await openFile(sealed, out, { identities: [alice.identity], workers });
      assert.ok(readFileSync(out).equals(plain));
    }
    const out = join(dir, "out-stream");
    await openStream(createReadStream(sealed), createWriteStream(out), {
      identities: [alice.identity],
    });
    assert.ok(readFileSync(out).equals(plain));
  }
});

test("progress is reported, ends at the total, and is throttled", async (t) => {
  const dir = tempDir(t);
  const plain = data(8 << 20);
  const input = join(dir, "plain");
  writeFileSync(input, plain);
  const calls: [number, number][] = [];
  await sealFile(input, join(dir, "x.tseal"), {
    recipients: [alice.recipient],
    workers: 2,
    onProgress: (d, total) => calls.push([d, total]),
  });
  assert.ok(calls.length >= 1 && calls.length < 20);
  assert.deepEqual(calls.at(-1), [plain.length, plain.length]);
  for (const [d, total] of calls) assert.ok(d <= total);
});

test("expectContext: matching passes, a missing or different key is refused", async (t) => {
  const dir = tempDir(t);
  const input = join(dir, "plain");
  writeFileSync(input, data(1000));
  const sealed = join(dir, "x.tseal");
  await sealFile(input, sealed, {
    recipients: [alice.recipient],
    context: { model: "llama", env: "prod" },
  });
  const out = join(dir, "out");
  await openFile(sealed, out, { identities: [alice.identity], expectContext: { env: "prod" } });
  const wrong: Record<string, string>[] = [{ env: "dev" }, { tenant: "x" }];
  for (const expectContext of wrong) {
    await assert.rejects(
      openFile(sealed, join(dir, "o2"), { identities: [alice.identity], expectContext }),
      (e: Error & { code?: string; file?: string; detail?: string }) => {
        assert.equal(e.code, "E_CONTEXT"); // not usage: the file is not the one expected
        assert.equal(e.file, sealed);
        assert.equal(e.message, `${sealed}: ${e.detail}`);
        assert.match(e.detail!, /"(env|tenant)"/);
        assert.doesNotMatch(e.detail!, /dev|prod/);
        return true;
      },
    );
  }
  assert.deepEqual(tempOutputs(dir), []);
});

/**
 * A script that seals a 6 MiB file with two workers in a child process and prints "sealed"; it
 * never calls closeWorkers(), so the process ends only if idle workers do not hold it.
 */
function childSealScript(dir: string): string {
  const input = join(dir, "plain");
  writeFileSync(input, data(6 << 20));
  const engine = new URL("../../src/engine/index.js", import.meta.url).href;
  const kek = new URL("../../src/keys/kek.js", import.meta.url).href;
  return `
    const { sealFile } = await import(${JSON.stringify(engine)});
    const { kekRecipient } = await import(${JSON.stringify(kek)});
    await sealFile(${JSON.stringify(input)}, ${JSON.stringify(join(dir, "x.tseal"))}, {
      recipients: [kekRecipient({ name: "a", version: 1 }, Buffer.alloc(32, 1))], workers: 2 });
    console.log("sealed");`;
}

function runNode(args: string[], timeout: number): void {
  const r = spawnSync(process.execPath, args, { encoding: "utf8", timeout });
  assert.equal(r.status, 0, `${args.slice(0, 2).join(" ")}: ${r.stderr}`);
  assert.match(r.stdout, /sealed/);
}

test("an idle worker pool does not keep the process alive", (t) => {
  const script = childSealScript(tempDir(t));
  const started = Date.now();
  runNode(["--input-type=module", "-e", script], 4000);
  assert.ok(Date.now() - started < 4000);
});

test("workers start under process-wide node flags (--secure-heap), with or without -e", (t) => {
  const dir = tempDir(t);
  const script = childSealScript(dir);
  const file = join(dir, "seal.mjs");
  writeFileSync(file, script);
  // A worker given an explicit flag list rejects process-wide flags (ERR_WORKER_INVALID_EXEC_ARGV).
  runNode(["--secure-heap=0", file], 20_000);
  runNode(["--secure-heap=0", "--input-type=module", "-e", script], 20_000);
});
