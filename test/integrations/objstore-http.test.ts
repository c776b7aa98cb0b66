/**
 * Sealed files read over HTTP Range requests from a loopback server that counts the bytes it
 * sends (range-server.ts): full opens equal the plaintext, one tensor fetches only its chunks,
 * and every way a server or an object can go wrong (a tampered byte, an object replaced
 * mid-read, a server ignoring ranges or answering the wrong one, 503s) is caught.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import {
  closeWorkers,
  openSource,
  openSourceToMemory,
  STREAM_BATCH_BYTES,
  sealFile,
  verifySource,
} from "../../src/engine/index.js";
import { TAG_SIZE } from "../../src/format/chunked.js";
import { isTensorSealError } from "../../src/format/errors.js";
import { publicRecipient, SUITE_PUBLIC } from "../../src/format/public.js";
import {
  openHttpSource,
  openObjectSource,
  PROBE_BYTES,
} from "../../src/integrations/objstore/index.js";
import {
  loadSealedSafetensors,
  openSealedSafetensors,
} from "../../src/integrations/safetensors/index.js";
import { parseIdentityFile, parseRecipient } from "../../src/keys/recipients.js";
import { generateX25519Identity } from "../../src/keys/x25519.js";
import { sandbox } from "../cli/helpers.js";
import { buildSafetensors } from "./helpers.js";
import { type RangeServer, rangeServer } from "./range-server.js";

after(() => closeWorkers());

const SECRET = "SIGNATURE0123456789SECRET";
const rejects = (code: string, pattern: RegExp) => (e: unknown) => {
  assert.ok(isTensorSealError(e), `expected a TensorSealError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.match(e.message, pattern);
  assert.doesNotMatch(e.message, new RegExp(SECRET));
  return true;
};

describe("object storage over HTTP Range requests (loopback server)", () => {
  const sb = sandbox();
  const key = generateX25519Identity();
  const idFile = join(sb.dir, "id.txt");
  const identities = parseIdentityFile(key.identity);
  const plain = randomBytes(12 * 1024 * 1024 + 12345);
  const tensors = Array.from({ length: 12 }, (_, i) => ({
    name: `layer.${i}.weight`,
    dtype: "F32",
    shape: [100, 250 + i],
    data: randomBytes(4 * 100 * (250 + i)),
  }));
  const model = buildSafetensors(tensors, { format: "pt" });
  const CHUNK = 16 << 10;
  let srv: RangeServer;
  let sealed: Buffer;
  let sealedModel: Buffer;
  const url = (path: string) =>
    `${srv.base}${path}?X-Amz-Signature=${SECRET}&X-Amz-Credential=AKIA`;

  before(async () => {
    writeFileSync(idFile, `${key.identity}\n`, { mode: 0o600 });
    const seal = async (data: Buffer, name: string) => {
      writeFileSync(join(sb.dir, name), data);
      await sealFile(join(sb.dir, name), join(sb.dir, `${name}.tseal`), {
        recipients: [parseRecipient(key.recipient)],
      });
      return readFileSync(join(sb.dir, `${name}.tseal`));
    };
    sealed = await seal(plain, "w.bin");
    // The model also to a keystore key: `inspect --tensors` then needs no -i (which would
    // also verify every chunk).
    assert.equal(sb.run(["init"]).status, 0);
    assert.equal(sb.run(["keys", "create", "models"]).status, 0);
    writeFileSync(join(sb.dir, "m.safetensors"), model);
    const s = sb.run([
      "seal",
      join(sb.dir, "m.safetensors"),
      "-k",
      "models",
      "-r",
      key.recipient,
      "--chunk-size",
      "16KiB",
    ]);
    assert.equal(s.status, 0, s.stderr);
    sealedModel = readFileSync(join(sb.dir, "m.safetensors.tseal"));
    srv = await rangeServer();
    srv.put("/w.bin.tseal", sealed);
    srv.put("/m.safetensors.tseal", sealedModel);
  });
  after(async () => {
    await srv?.close();
    sb.cleanup();
  });

  test("a full open and a verify through the engine equal the plaintext, fetched once", async () => {
    srv.reset();
    const src = await openObjectSource(url("/w.bin.tseal"));
    try {
      const out = join(sb.dir, "w.out");
      const r = await openSource(src, out, { identities });
      assert.equal(r.plaintextLength, plain.length);
      assert.ok(readFileSync(out).equals(plain));
      // The probe overlaps the first batch by at most PROBE_BYTES: nothing else is fetched twice.
      assert.ok(srv.bytesServed <= sealed.length + PROBE_BYTES, `${srv.bytesServed}`);
      assert.ok(
        srv.requests.every((q, i) => i === 0 || q.ifMatch),
        "reads are pinned by ETag",
      );
      await verifySource(src, { identities });
    } finally {
      await src.close();
    }
  });

  test("a whole read is one streamed GET; a connection dropped mid-body resumes from the first byte not received, pinned by If-Match", async () => {
    srv.reset();
    srv.mode.dropAfter = { bytes: 3 << 20, times: 2 };
    const src = await openHttpSource(url("/w.bin.tseal"), { backoffMs: 1 });
    try {
      const out = join(sb.dir, "resumed.out");
      await openSource(src, out, { identities });
      assert.ok(readFileSync(out).equals(plain));
      const ranges = srv.requests.map((q) => q.range);
      const end = sealed.length - 1;
      assert.deepEqual(ranges, [
        `bytes=0-${PROBE_BYTES - 1}`,
        `bytes=${PROBE_BYTES}-${end}`,
        `bytes=${PROBE_BYTES + (3 << 20)}-${end}`,
        `bytes=${PROBE_BYTES + (6 << 20)}-${end}`,
      ]);
      assert.ok(
        srv.requests.slice(1).every((q) => q.ifMatch),
        "every body GET is pinned",
      );
      assert.equal(srv.bytesServed, sealed.length, "no byte fetched twice");
      // The same into memory (a full load): decrypted in place, equal to the plaintext.
      srv.reset();
      srv.mode.dropAfter = { bytes: 5 << 20, times: 1 };
      const loaded = await openSourceToMemory(src, { identities });
      assert.ok(loaded.buffer.equals(plain));
      assert.equal(srv.requests.length, 2, "the body GET and its resumption");
      // ranges: true fetches 8 MiB batches in parallel instead (a store that caps a connection).
      srv.reset();
      const ranged = await openSourceToMemory(src, { identities, ranges: true });
      assert.ok(ranged.buffer.equals(plain));
      assert.ok(srv.requests.length >= 2, `${srv.requests.length} ranged GETs`);
      assert.ok(srv.requests.every((q) => q.ifMatch && /^bytes=\d+-\d+$/.test(q.range ?? "")));
    } finally {
      await src.close();
    }
  });

  test("an object inside the probe (tiny or empty plaintext) is read whole from it: one request", async () => {
    for (const size of [0, 1000]) {
      const data = randomBytes(size);
      writeFileSync(join(sb.dir, `tiny${size}`), data);
      await sealFile(join(sb.dir, `tiny${size}`), join(sb.dir, `tiny${size}.tseal`), {
        recipients: [parseRecipient(key.recipient)],
      });
      srv.put(`/tiny${size}.tseal`, readFileSync(join(sb.dir, `tiny${size}.tseal`)));
      srv.reset();
      const src = await openObjectSource(url(`/tiny${size}.tseal`));
      try {
        assert.ok((await openSourceToMemory(src, { identities })).buffer.equals(data));
        await verifySource(src, { identities });
        assert.equal(srv.requests.length, 1, "the probe only");
      } finally {
        await src.close();
      }
    }
  });

  test("a public (integrity-only) file streams too: into memory equal, one flipped byte rejected", async () => {
    writeFileSync(join(sb.dir, "pub.bin"), plain);
    await sealFile(join(sb.dir, "pub.bin"), join(sb.dir, "pub.bin.tseal"), {
      recipients: [publicRecipient()],
      suite: SUITE_PUBLIC,
      labels: { "tensorseal:tier": "public" },
    });
    const pub = readFileSync(join(sb.dir, "pub.bin.tseal"));
    srv.put("/pub.tseal", pub);
    const bad = Buffer.from(pub);
    bad.writeUInt8(bad[bad.length - 3000]! ^ 1, bad.length - 3000);
    srv.put("/pub-bad.tseal", bad);
    srv.reset();
    const src = await openObjectSource(url("/pub.tseal"));
    try {
      assert.ok((await openSourceToMemory(src, { identities: [] })).buffer.equals(plain));
      assert.equal(srv.requests.length, 2, "the probe and one body GET");
    } finally {
      await src.close();
    }
    const badSrc = await openObjectSource(url("/pub-bad.tseal"));
    try {
      await assert.rejects(
        openSourceToMemory(badSrc, { identities: [] }),
        rejects("E_DECRYPT", /chunk \d+ failed/),
      );
    } finally {
      await badSrc.close();
    }
  });

  test("a body cut at the same byte every time (a truncated answer) fails with E_IO and releases nothing", async () => {
    srv.reset();
    srv.mode.cutAt = sealed.length - 1000;
    const src = await openHttpSource(url("/w.bin.tseal"), { backoffMs: 1, attempts: 3 });
    try {
      const out = join(sb.dir, "cut.out");
      await assert.rejects(
        openSource(src, out, { identities }),
        rejects("E_IO", /the download kept breaking off .*still after 3 attempts/),
      );
      assert.ok(!existsSync(out), "no output appears");
      await assert.rejects(
        openSourceToMemory(src, { identities }),
        rejects("E_IO", /breaking off/),
      );
    } finally {
      await src.close();
      srv.reset();
    }
  });

  test("a truncated object is rejected before any plaintext; a tampered one over the stream releases only authenticated batches", async () => {
    srv.reset();
    const CS = (1 << 20) + TAG_SIZE;
    for (const cut of [17, CS, 3 * CS]) {
      srv.put("/short.tseal", sealed.subarray(0, sealed.length - cut));
      const src = await openObjectSource(url("/short.tseal"));
      try {
        await assert.rejects(
          openSourceToMemory(src, { identities }),
          rejects("E_TRUNCATED", /payload holds \d+ bytes but the descriptor records/),
        );
      } finally {
        await src.close();
      }
    }
    // One flipped byte in chunk 10 (streamed batches of 2 chunks of 1 MiB: the sixth batch):
    // the batches before it (authenticated) may reach a stream consumer, nothing of chunk
    // 10's batch does, and a load into memory returns nothing.
    const at = sealed.length - 2 * (1 << 20);
    const bad = Buffer.from(sealed);
    bad.writeUInt8(bad[at]! ^ 1, at);
    srv.put("/bad-stream.tseal", bad);
    const src = await openObjectSource(url("/bad-stream.tseal"));
    try {
      const got: Buffer[] = [];
      const sink = new Writable({
        write(c: Buffer, _e, cb) {
          got.push(Buffer.from(c));
          cb();
        },
      });
      await assert.rejects(
        openSource(src, sink, { identities }),
        rejects("E_DECRYPT", /chunk 10 failed/),
      );
      const received = Buffer.concat(got);
      const batchPlain = Math.floor(STREAM_BATCH_BYTES / CS) * (1 << 20);
      assert.ok(
        received.length <= 10 * (1 << 20) && received.length % batchPlain === 0,
        `${received.length} bytes released`,
      );
      assert.ok(
        received.equals(plain.subarray(0, received.length)),
        "only authenticated plaintext",
      );
      await assert.rejects(
        openSourceToMemory(src, { identities }),
        rejects("E_DECRYPT", /chunk 10 failed/),
      );
      // To a file, earlier batches' writes are still in flight when chunk 10 fails: waited
      // for, then the temporary output removed.
      const out = join(sb.dir, "bad-stream.out");
      await assert.rejects(
        openSource(src, out, { identities }),
        rejects("E_DECRYPT", /chunk 10 failed/),
      );
      assert.ok(!existsSync(out), "no output appears");
    } finally {
      await src.close();
    }
  });

  test("a full load of a sealed safetensors URL (one streamed GET) equals every tensor; a tampered one loads nothing", async () => {
    srv.reset();
    const loaded = await loadSealedSafetensors(url("/m.safetensors.tseal"), identities);
    for (const t of tensors) {
      const a = loaded.arrays.get(t.name)!;
      assert.ok(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(t.data), t.name);
    }
    assert.equal(srv.requests.length, 2, "the probe and one body GET");
    assert.equal(srv.bytesServed, sealedModel.length, "every byte once");
    const bad = Buffer.from(sealedModel);
    bad.writeUInt8(bad[bad.length - 40]! ^ 1, bad.length - 40);
    srv.put("/m-bad.safetensors.tseal", bad);
    await assert.rejects(
      loadSealedSafetensors(url("/m-bad.safetensors.tseal"), identities),
      rejects("E_DECRYPT", /chunk \d+ failed/),
    );
  });

  test("CLI: open URL -o FILE and -o -, verify URL and inspect URL; the query never shows", async () => {
    const out = join(sb.dir, "cli.out");
    let r = await sb.runAsync(["open", url("/w.bin.tseal"), "-o", out, "-i", idFile]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(out).equals(plain));
    assert.match(
      r.stderr,
      /opened http:\/\/127\.0\.0\.1:\d+\/w\.bin\.tseal\?\[query redacted\] ->/,
    );
    r = await sb.runAsync(["verify", url("/w.bin.tseal"), "-i", idFile]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^OK {4}http:\/\/127\.0\.0\.1:\d+\/w\.bin\.tseal\?\[query redacted\]$/m);
    srv.reset();
    r = await sb.runAsync(["inspect", url("/w.bin.tseal")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`plaintext: +${plain.length} bytes`));
    assert.ok(srv.bytesServed <= PROBE_BYTES, `inspect fetched ${srv.bytesServed} bytes`);
    for (const t of [r.stdout, r.stderr]) assert.doesNotMatch(t, new RegExp(SECRET));
    r = await sb.runAsync(["open", url("/w.bin.tseal"), "-i", idFile]);
    assert.equal(r.status, 2, "a URL needs -o");
    assert.match(r.stderr, /needs -o FILE/);
  });

  test("open -o - streams the plaintext to stdout", async () => {
    const { spawn } = await import("node:child_process");
    const { CLI } = await import("../cli/helpers.js");
    const c = spawn(process.execPath, [CLI, "open", url("/w.bin.tseal"), "-o", "-", "-i", idFile], {
      env: sb.env,
      cwd: sb.dir,
    });
    const parts: Buffer[] = [];
    c.stdout.on("data", (d: Buffer) => parts.push(d));
    const status = await new Promise((r) => c.on("close", r));
    assert.equal(status, 0);
    assert.ok(Buffer.concat(parts).equals(plain));
  });

  test("one tensor fetches its bytes + 2 chunks + the header, and inspect --tensors only the header", async () => {
    srv.reset();
    const st = await openSealedSafetensors(url("/m.safetensors.tseal"), identities);
    try {
      const atOpen = srv.bytesServed;
      const sealedChunk = CHUNK + TAG_SIZE;
      // Opening: the probe (the .tseal header, one 64 KiB range that also holds the start of
      // the payload with the safetensors header) and the final chunk (it authenticates the
      // length).
      const headerBytes = PROBE_BYTES + sealedChunk;
      assert.ok(atOpen <= headerBytes, `open fetched ${atOpen} > ${headerBytes}`);
      const t = tensors[6]!;
      const got = await st.getTensorBytes(t.name);
      assert.ok(got.equals(t.data));
      assert.ok(
        srv.bytesServed <= t.data.length + 2 * sealedChunk + headerBytes,
        `${srv.bytesServed} bytes fetched for a ${t.data.length}-byte tensor`,
      );
      assert.ok(srv.bytesServed < sealedModel.length / 4, "not the whole file");
    } finally {
      await st.close();
    }
    srv.reset();
    const r = await sb.runAsync(["inspect", "--tensors", url("/m.safetensors.tseal")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /tensors: +12/);
    assert.match(r.stdout, /layer\.11\.weight +F32 +\[100, 261\]/);
    assert.ok(
      srv.bytesServed <= PROBE_BYTES + (CHUNK + TAG_SIZE),
      `${srv.bytesServed} ${JSON.stringify(srv.requests)}`,
    );
  });

  test("a tampered byte in the remote object is rejected (E_DECRYPT), the URL named without its query", async () => {
    const bad = Buffer.from(sealed);
    bad.writeUInt8(bad[bad.length - 5 * 1024 * 1024]! ^ 1, bad.length - 5 * 1024 * 1024);
    srv.put("/bad.tseal", bad);
    const src = await openObjectSource(url("/bad.tseal"));
    try {
      await assert.rejects(
        openSource(src, join(sb.dir, "bad.out"), { identities }),
        rejects(
          "E_DECRYPT",
          /^http:\/\/127\.0\.0\.1:\d+\/bad\.tseal\?\[query redacted\]: chunk \d+ failed/,
        ),
      );
    } finally {
      await src.close();
    }
    assert.throws(() => readFileSync(join(sb.dir, "bad.out")), /ENOENT/, "no output appears");
    const r = await sb.runAsync(["verify", url("/bad.tseal"), "-i", idFile]);
    assert.equal(r.status, 5, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(SECRET));
  });

  test("an object replaced mid-read (its ETag changes) fails instead of mixing versions", async () => {
    srv.reset();
    srv.put("/swap.tseal", sealed);
    const other = Buffer.from(sealed);
    other.writeUInt8(other[other.length - 1]! ^ 1, other.length - 1); // same size, another ETag
    const src = await openObjectSource(url("/swap.tseal"));
    try {
      // Replaced after the probe: the streamed body (If-Match) and a ranged read both refuse.
      srv.mode.replaceAfter = { requests: 1, path: "/swap.tseal", data: other };
      await assert.rejects(
        openSource(src, join(sb.dir, "swap.out"), { identities }),
        rejects("E_IO", /the object changed while it was being read/),
      );
      await assert.rejects(
        src.read(PROBE_BYTES, 1 << 20),
        rejects("E_IO", /the object changed while it was being read/),
      );
    } finally {
      await src.close();
    }
  });

  test("a server that ignores Range (200) or answers another range is refused", async () => {
    srv.reset();
    srv.mode.ignoreRange = true;
    await assert.rejects(
      openObjectSource(url("/w.bin.tseal")),
      rejects("E_IO", /ignored the Range request \(200 instead of 206\)/),
    );
    assert.ok(srv.bytesServed > 0, "the server did send a whole body");
    srv.reset();
    srv.mode.wrongRange = true;
    await assert.rejects(
      openObjectSource(url("/w.bin.tseal")),
      rejects("E_IO", /another range than asked/),
    );
  });

  test("503s are retried with backoff; a server that keeps failing is given up on", async () => {
    srv.reset();
    srv.mode.fail503 = 2;
    const src = await openHttpSource(url("/w.bin.tseal"), { backoffMs: 1 });
    try {
      await verifySource(src, { identities });
      assert.equal(srv.requests.length, 2 + 1 + 1, "2 refused probes, the probe, one streamed GET");
    } finally {
      await src.close();
    }
    srv.reset();
    srv.mode.fail503 = 100;
    await assert.rejects(
      openHttpSource(url("/w.bin.tseal"), { backoffMs: 1, attempts: 3 }),
      rejects("E_IO", /HTTP 503, still after 3 attempts/),
    );
  });

  test("a stalled request times out and is retried", async () => {
    srv.reset();
    srv.mode.stall = 1;
    const t0 = Date.now();
    const src = await openHttpSource(url("/w.bin.tseal"), { backoffMs: 1, timeoutMs: 300 });
    await src.close();
    assert.ok(Date.now() - t0 >= 300, "the first attempt waited for its timeout");
    assert.equal(srv.requests.length, 2, "the stalled probe, then the answered one");
  });

  test("plain http:// to another host and sealing to https:// are refused", async () => {
    await assert.rejects(
      openObjectSource("http://example.com/w.tseal"),
      rejects("E_USAGE", /only to a loopback host/),
    );
    writeFileSync(join(sb.dir, "small.bin"), "x");
    const r = await sb.runAsync([
      "seal",
      join(sb.dir, "small.bin"),
      "-o",
      `https://example.com/x.tseal?sig=${SECRET}`,
      "-r",
      key.recipient,
    ]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /sealing writes only to s3:\/\/ URLs/);
    assert.doesNotMatch(r.stderr, new RegExp(SECRET));
  });
});
