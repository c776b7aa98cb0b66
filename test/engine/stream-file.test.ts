/**
 * A regular file as a stream's input (engine/stream-file.ts): the bytes round-trip at every
 * chunk boundary, a seal takes
 * whole chunks from mappings (and unmaps them as it goes), an open never maps (a writer could
 * change the ciphertext between GCM's tag check and its decryption), the descriptor's own
 * position is left alone.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, ftruncateSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, test } from "node:test";
import { closeWorkers, openStream, sealStream } from "../../src/engine/index.js";
import { nativeGcm } from "../../src/engine/native-gcm.js";
import { FileSource, fileSource } from "../../src/engine/stream-file.js";
import { FILE_READ_BYTES } from "../../src/engine/stream-io.js";
import { NativeStreamSealer } from "../../src/engine/stream-sealer.js";
import { makeKey, tempDir } from "./helpers.js";

after(() => closeWorkers());
const alice = makeKey("alice");
const CHUNK = 64 << 10;

function collector(): { out: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(Buffer.from(chunk));
      cb();
    },
  });
  return { out, bytes: () => Buffer.concat(parts) };
}

function fileWith(t: { after: (fn: () => void) => void }, bytes: Buffer): string {
  const path = join(tempDir(t), "in");
  const fd = openSync(path, "w");
  writeSync(fd, bytes);
  closeSync(fd);
  return path;
}

/** How many mappings of `path` the process holds now (/proc/self/maps). */
function mappingsOf(path: string): number {
  return readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .filter((l) => l.endsWith(` ${path}`)).length;
}

/** A collector that notes, at each write, whether `path` was mapped. */
function watching(path: () => string): { out: Writable; bytes: () => Buffer; mapped: number } {
  const c = collector();
  const r = { out: c.out, bytes: c.bytes, mapped: 0 };
  const write = c.out._write.bind(c.out);
  c.out._write = (chunk, enc, cb) => {
    if (mappingsOf(path()) > 0) r.mapped++;
    write(chunk, enc, cb);
  };
  return r;
}

for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 3 * FILE_READ_BYTES + 777]) {
  test(`a ${size}-byte file sealed and opened through FileSource round-trips`, async (t) => {
    const plain = randomBytes(size);
    const path = fileWith(t, plain);
    const fd = openSync(path, "r");
    const sealed = watching(() => path);
    try {
      await sealStream(fd, sealed.out, {
        recipients: [alice.recipient],
        chunkSize: CHUNK,
        inputOffset: 0,
      });
      // The descriptor's own position was never moved: a read from it starts at 0.
      const first = Buffer.alloc(1);
      assert.equal(readSync(fd, first, 0, 1, null), size > 0 ? 1 : 0);
      if (size > 0) assert.equal(first[0], plain[0]);
    } finally {
      closeSync(fd);
    }
    // Whole chunks after the first read came from mappings, every one unmapped at the end.
    if (nativeGcm && size >= 3 * CHUNK) assert.ok(sealed.mapped > 0, "no mapped read");
    assert.equal(mappingsOf(path), 0, "a mapping outlived the seal");
    const sealedPath = fileWith(t, sealed.bytes());
    const sfd = openSync(sealedPath, "r");
    const opened = watching(() => sealedPath);
    try {
      await openStream(sfd, opened.out, { identities: [alice.identity], inputOffset: 0 });
    } finally {
      closeSync(sfd);
    }
    assert.equal(opened.mapped, 0, "an open never reads ciphertext from a mapping");
    assert.ok(opened.bytes().equals(plain));
  });
}

test("inputOffset: the stream starts there, whatever the descriptor's position", async (t) => {
  const head = Buffer.from("not part of it");
  const plain = randomBytes(4 * CHUNK + 5);
  const path = fileWith(t, Buffer.concat([head, plain]));
  const fd = openSync(path, "r");
  const sealed = collector();
  try {
    await sealStream(fd, sealed.out, {
      recipients: [alice.recipient],
      chunkSize: CHUNK,
      inputOffset: head.length,
    });
  } finally {
    closeSync(fd);
  }
  const sfd = openSync(fileWith(t, sealed.bytes()), "r");
  const opened = collector();
  try {
    await openStream(sfd, opened.out, { identities: [alice.identity], inputOffset: 0 });
  } finally {
    closeSync(sfd);
  }
  assert.ok(opened.bytes().equals(plain));
});

test("a tampered chunk read through FileSource fails and releases nothing of its batch", async (t) => {
  const plain = randomBytes(8 * CHUNK);
  const sealed = collector();
  const ifd = openSync(fileWith(t, plain), "r");
  try {
    await sealStream(ifd, sealed.out, {
      recipients: [alice.recipient],
      chunkSize: CHUNK,
      inputOffset: 0,
    });
  } finally {
    closeSync(ifd);
  }
  const bytes = sealed.bytes();
  const at = bytes.length - 3 * CHUNK;
  bytes[at] = bytes[at]! ^ 1; // inside one of the last whole chunks
  const sfd = openSync(fileWith(t, bytes), "r");
  const opened = collector();
  try {
    await assert.rejects(
      openStream(sfd, opened.out, { identities: [alice.identity], inputOffset: 0 }),
      (e: Error & { code?: string }) => e.code === "E_DECRYPT",
    );
  } finally {
    closeSync(sfd);
  }
  // Only whole authenticated chunks before the bad one, never the plaintext around it.
  const got = opened.bytes();
  assert.ok(got.length < plain.length - 3 * CHUNK);
  assert.ok(got.equals(plain.subarray(0, got.length)));
});

test("fileSource: a pipe or device is not a FileSource (the caller reads it as before)", () => {
  const fd = openSync("/dev/null", "r");
  try {
    assert.equal(fileSource(fd, 0), null);
  } finally {
    closeSync(fd);
  }
});

test("a mapped read is whole steps, a read that is not is a copy, and the file's end is seen", async (t) => {
  const step = 4096 + 16;
  const plain = randomBytes(3 * FILE_READ_BYTES + 100);
  const fd = openSync(fileWith(t, plain), "r");
  const src = new FileSource(fd, 0, nativeGcm);
  try {
    let at = 0;
    const first = await src.read(100, step, true); // not a whole step: a pread
    assert.ok(first.equals(plain.subarray(0, first.length)));
    at += first.length;
    for (;;) {
      const b = await src.read(step, step, true);
      if (b.length === 0) break;
      assert.ok(b.equals(plain.subarray(at, at + b.length)), `bytes at ${at}`);
      at += b.length;
    }
    assert.equal(at, plain.length);
  } finally {
    src.close();
    closeSync(fd);
  }
});

test("a file cut short after a stream seal mapped it fails on the pool thread, not with SIGBUS", async (t) => {
  // What sealStream does with a named file (FileSource's mapped read, then the native sealer's
  // batches on libuv pool threads), with the file cut to nothing in between: the batch's pages
  // lie past the end, and the addon's guard must turn the fault into ERR_TSEAL_INPUT_CHANGED
  // (which sealStream reports as E_IO). Without the guard the process dies here.
  if (!nativeGcm?.sealBatchAsync) {
    if (process.env["TENSORSEAL_REQUIRE_ALL"] === "1") assert.fail("no native async batches");
    return t.skip("the native addon is not built");
  }
  const cs = 1 << 20;
  const path = fileWith(t, randomBytes(3 * FILE_READ_BYTES));
  const fd = openSync(path, "r+");
  const src = new FileSource(fd, 0, nativeGcm);
  const sealer = new NativeStreamSealer(nativeGcm, randomBytes(32), Buffer.from("ctx"), cs);
  try {
    const view = await src.read(cs, cs, true);
    assert.equal(view.length, 4 * cs, "not a mapped read of four whole chunks");
    assert.equal(mappingsOf(path), 1);
    ftruncateSync(fd, 0);
    await assert.rejects(
      sealer.pushAsync(view),
      (e: Error & { code?: string }) => e.code === "ERR_TSEAL_INPUT_CHANGED",
    );
  } finally {
    quietly(() => sealer.finish());
    src.close();
    closeSync(fd);
  }
  assert.equal(mappingsOf(path), 0, "a mapping outlived the failed seal");
});

function quietly(fn: () => unknown): void {
  try {
    fn();
  } catch {
    // only the keys' wipe matters here
  }
}

test("reads ahead only for whole steps at the same place, and drops what the consumer did not ask for", async (t) => {
  const step = (1 << 20) + 16;
  const plain = randomBytes(4 * FILE_READ_BYTES + 12345);
  const fd = openSync(fileWith(t, plain), "r");
  const src = new FileSource(fd, 0, null); // no mappings: every read a pread
  const got: Buffer[] = [];
  const take = async (min: number, s?: number) => {
    const b = await src.read(min, s);
    got.push(Buffer.from(b)); // the source reuses its buffers
    return b.length;
  };
  try {
    assert.equal(await take(step, step), 2 * step); // whole steps: the next read starts now
    assert.equal(await take(step, step), 2 * step); // taken from the read ahead
    assert.equal(await take(100), FILE_READ_BYTES); // not whole steps: the read ahead is dropped
    assert.equal(await take(step - 5, step), step - 5 + step); // other steps: no read ahead used
    for (;;) if ((await take(step, step)) === 0) break;
    assert.ok(Buffer.concat(got).equals(plain), "bytes lost, repeated or out of place");
  } finally {
    src.close();
    closeSync(fd);
  }
});

test("closing with a read ahead in flight wipes its buffer once it lands", async (t) => {
  const step = (1 << 20) + 16;
  const fd = openSync(fileWith(t, randomBytes(3 * FILE_READ_BYTES)), "r");
  const src = new FileSource(fd, 0, null);
  await src.read(step, step); // starts a read ahead
  const ahead = (src as unknown as { ahead: { buf: Buffer; filled: Promise<number> } }).ahead;
  assert.ok(ahead, "no read ahead after a whole-step read");
  src.close();
  await ahead.filled.catch(() => {});
  await new Promise((r) => setImmediate(r));
  closeSync(fd);
  assert.ok(
    ahead.buf.every((b) => b === 0),
    "the read-ahead buffer kept file bytes after close",
  );
});
