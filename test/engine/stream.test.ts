/** Streaming paths: odd piece sizes, backpressure, early header errors. */
import assert from "node:assert/strict";
import { Readable, Writable } from "node:stream";
import { after, test } from "node:test";
import { closeWorkers, openStream, sealStream } from "../../src/engine/index.js";
import { codeOf, data, makeKey } from "./helpers.js";

after(() => closeWorkers());
const alice = makeKey("alice");

/** Yields `buf` in pieces of varying size (1 byte for the first `tiny` bytes). */
function source(buf: Buffer, tiny = 0): Readable {
  return Readable.from(
    (function* () {
      let i = 0;
      while (i < tiny && i < buf.length) yield buf.subarray(i, ++i);
      let step = 1;
      while (i < buf.length) {
        step = (step * 7 + 13) % 70_000 || 1;
        yield buf.subarray(i, i + step);
        i += step;
      }
    })(),
  );
}

/** A slow sink with a small buffer that records the most bytes ever queued, and the largest write. */
function slowSink(hwm = 16 * 1024) {
  const parts: Buffer[] = [];
  let peak = 0;
  let largest = 0;
  const sink = new Writable({
    highWaterMark: hwm,
    write(chunk: Buffer, _enc, cb) {
      parts.push(Buffer.from(chunk));
      peak = Math.max(peak, sink.writableLength);
      largest = Math.max(largest, chunk.length);
      setImmediate(cb);
    },
  });
  return { sink, bytes: () => Buffer.concat(parts), peak: () => peak, largest: () => largest };
}

test("stream round trip with odd pieces, byte-wise header, and backpressure", async () => {
  const chunkSize = 16384;
  const plain = data(1_000_000);
  const sealed = slowSink();
  await sealStream(source(plain), sealed.sink, { recipients: [alice.recipient], chunkSize });
  // Backpressure: never more queued than the sink's buffer plus one write. A write is the whole
  // chunks that one input piece (at most 70,000 bytes here) completed, joined: one addon batch.
  const oneWrite = Math.ceil((70_000 + chunkSize) / chunkSize) * (chunkSize + 16);
  assert.ok(sealed.largest() <= oneWrite, `largest write ${sealed.largest()}`);
  assert.ok(sealed.largest() > chunkSize + 16, "whole chunks of one piece go out in one write");
  assert.ok(sealed.peak() <= 16 * 1024 + oneWrite, `peak ${sealed.peak()}`);
  const opened = slowSink();
  const r = await openStream(source(sealed.bytes(), 20_000), opened.sink, {
    identities: [alice.identity],
  });
  assert.equal(r.plaintextLength, plain.length);
  assert.equal(r.descriptor.plaintextLength, null);
  assert.ok(opened.bytes().equals(plain));
  assert.ok(opened.peak() <= 16 * 1024 + oneWrite, `peak ${opened.peak()}`);
});

test("openStream rejects foreign, empty and cut headers, and a wrong context", async () => {
  const sink = () => slowSink().sink;
  const ids = { identities: [alice.identity] };
  assert.equal(
    await codeOf(openStream(source(Buffer.from("PK\x03\x04 zip")), sink(), ids)),
    "E_NOT_TSEAL",
  );
  assert.equal(await codeOf(openStream(Readable.from([]), sink(), ids)), "E_TRUNCATED");
  const sealed = slowSink();
  await sealStream(source(data(100)), sealed.sink, {
    recipients: [alice.recipient],
    context: { env: "prod" },
  });
  const bytes = sealed.bytes();
  assert.equal(
    await codeOf(openStream(source(bytes.subarray(0, 5000)), sink(), ids)),
    "E_TRUNCATED",
  );
  assert.equal(
    await codeOf(openStream(source(bytes), sink(), { ...ids, expectContext: { env: "dev" } })),
    "E_CONTEXT",
  );
  assert.equal(
    await codeOf(openStream(source(bytes), sink(), { identities: [makeKey("eve").identity] })),
    "E_NO_IDENTITY",
  );
});

test("sealStream rejects when the input stream fails, and refuses no recipients", async () => {
  const failing = new Readable({
    read() {
      this.destroy(new Error("disk on fire"));
    },
  });
  await assert.rejects(
    sealStream(failing, slowSink().sink, { recipients: [alice.recipient] }),
    /disk on fire/,
  );
  assert.equal(
    await codeOf(sealStream(source(data(10)), slowSink().sink, { recipients: [] })),
    "E_USAGE",
  );
});
