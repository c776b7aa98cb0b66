/**
 * The ends of the stream paths (engine/stream-io.ts): a descriptor read returns as soon as the
 * bytes asked for are there (a slow pipe is not held back for a full buffer) and never before;
 * output buffers are reused only for Node's own writers, so a Writable that keeps the chunks it
 * was given still holds the right bytes; stdin as a pipe (a child's fd 0) round-trips.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, openSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { after, test } from "node:test";
import { closeWorkers, openStream, sealStream } from "../../src/engine/index.js";
import { askFor, FILE_READ_BYTES, isNodeWriter, pullSource } from "../../src/engine/stream-io.js";
import { makeKey, tempDir } from "./helpers.js";

after(() => closeWorkers());
const alice = makeKey("alice");

test("a descriptor read waits for the bytes asked for, and no longer (a FIFO held open)", async (t) => {
  const fifo = join(tempDir(t), "in.fifo");
  assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
  const reader = open(fifo, "r");
  const writer = openSync(fifo, "w");
  const fh = await reader;
  try {
    const source = pullSource(fh.fd);
    writeSync(writer, Buffer.alloc(3000, 1));
    // 3000 bytes are there and 1000 were asked for: the read returns them without waiting.
    assert.equal((await source.read(1000)).length, 3000);
    let done = false;
    const pending = source.read(5000).then((b) => {
      done = true;
      return b;
    });
    writeSync(writer, Buffer.alloc(2000, 2));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(done, false, "2000 of the 5000 bytes asked for: still reading");
    writeSync(writer, Buffer.alloc(3000, 3));
    const b = await pending;
    assert.equal(b.length, 5000);
    assert.equal(b[0], 2);
    assert.equal(b[4999], 3);
    closeSync(writer);
    assert.equal((await source.read(1)).length, 0, "the end of the input");
    source.close();
  } finally {
    await fh.close();
  }
});

test("a Writable that keeps its chunks gets buffers that are never reused", async () => {
  const plain = randomBytes(5 * (1 << 20) + 7);
  const kept: Buffer[] = [];
  const keeper = () =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        kept.push(chunk); // no copy: reusing this buffer later would corrupt it
        setImmediate(cb);
      },
    });
  assert.equal(isNodeWriter(keeper()), false);
  assert.equal(isNodeWriter(process.stdout), true);
  await sealStream(Readable.from([plain]), keeper(), { recipients: [alice.recipient] });
  const sealed = Buffer.concat(kept);
  kept.length = 0;
  await openStream(Readable.from([sealed]), keeper(), { identities: [alice.identity] });
  assert.ok(Buffer.concat(kept).equals(plain));
});

test("stdin as a pipe: a child seals fd 0 to stdout and opens it back", () => {
  const plain = randomBytes(3 * (1 << 20) + 11);
  const url = (rel: string) => JSON.stringify(new URL(rel, import.meta.url).href);
  // The same KEK in both children (from the environment), as a KEK recipient and identity.
  const script = (what: string) => `
    const { ${what}Stream } = await import(${url("../../src/engine/index.js")});
    const { kekIdentity, kekRecipient } = await import(${url("../../src/keys/kek.js")});
    const kek = Buffer.from(process.env.TEST_KEK, "hex");
    const ref = { name: "io", version: 1 };
    const opts = ${what === "seal" ? "{ recipients: [kekRecipient(ref, kek)] }" : '{ identities: [kekIdentity("kek:io", () => kek)] }'};
    await ${what}Stream(0, process.stdout, opts);
  `;
  const env = { ...process.env, TEST_KEK: randomBytes(32).toString("hex") };
  const run = (what: string, input: Buffer) => {
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script(what)], {
      input,
      env,
      maxBuffer: 64 << 20,
    });
    assert.equal(r.status, 0, r.stderr.toString());
    return r.stdout;
  };
  const sealed = run("seal", plain);
  assert.ok(run("open", sealed).equals(plain));
});

test("stdin as a pipe written in odd pieces with pauses: every request met, bytes in order", async () => {
  const plain = randomBytes((1 << 20) + 5 * 7777 + 3);
  const url = JSON.stringify(new URL("../../src/engine/stream-io.js", import.meta.url).href);
  // The child asks for 100,000 bytes at a time, as a sealer asks for what completes a chunk.
  const script = `
    const { pullSource } = await import(${url});
    const { createHash } = await import("node:crypto");
    const s = pullSource(0);
    const h = createHash("sha256");
    const lens = [];
    for (;;) {
      const b = await s.read(100000);
      if (b.length === 0) break;
      lens.push(b.length);
      h.update(b);
    }
    s.close();
    process.stdout.write(JSON.stringify({ lens, digest: h.digest("hex") }));
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const out: Buffer[] = [];
  child.stdout.on("data", (d: Buffer) => out.push(d));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  for (let at = 0; at < plain.length; at += 7777) {
    const piece = plain.subarray(at, at + 7777);
    if (!child.stdin.write(piece)) await new Promise((r) => child.stdin.once("drain", r));
    if (at % (20 * 7777) === 0) await new Promise((r) => setTimeout(r, 5));
  }
  child.stdin.end();
  assert.equal(await exited, 0);
  const { lens, digest } = JSON.parse(Buffer.concat(out).toString()) as {
    lens: number[];
    digest: string;
  };
  assert.equal(digest, createHash("sha256").update(plain).digest("hex"));
  assert.equal(
    lens.reduce((a, b) => a + b, 0),
    plain.length,
  );
  // Fewer bytes only at the end of the input.
  for (const n of lens.slice(0, -1)) assert.ok(n >= 100000, `a read returned ${n} bytes`);
});

test("a file read with a step ends on a step boundary (nothing left to stage)", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "in");
  const plain = randomBytes(3 * FILE_READ_BYTES + 12345);
  const w = openSync(path, "w");
  writeSync(w, plain);
  closeSync(w);
  const fh = await open(path, "r");
  try {
    const src = pullSource(fh.fd);
    const step = (1 << 20) + 16;
    const first = await src.read(100, step);
    assert.equal(first.length, askFor(100, step, FILE_READ_BYTES));
    assert.equal((first.length - 100) % step, 0);
    assert.ok(first.length > FILE_READ_BYTES - step, "as many whole steps as fit");
    assert.ok(first.equals(plain.subarray(0, first.length)));
    const second = await src.read(step, step);
    assert.equal(second.length % step, 0);
    assert.ok(second.equals(plain.subarray(first.length, first.length + second.length)));
    src.close();
  } finally {
    await fh.close();
  }
});
