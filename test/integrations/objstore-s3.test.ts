/**
 * Sealed files in S3, against moto's S3 server started here on a free loopback port: a
 * multipart `seal -o s3://` then `open`/`verify`/`inspect` from s3:// round-trips, a failed
 * upload leaves no object (and no multipart upload behind), an object replaced mid-read fails
 * on its ETag, a tampered object is rejected. Without moto the suite is skipped with the reason,
 * unless TENSORSEAL_REQUIRE_ALL=1 (CI), where a missing component fails the run.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, request } from "node:http";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { closeWorkers, openSource, openSourceToMemory } from "../../src/engine/index.js";
import { isTensorSealError } from "../../src/format/errors.js";
import { openObjectSource } from "../../src/integrations/objstore/index.js";
import { s3Client } from "../../src/integrations/objstore/s3-client.js";
import { sealToS3 } from "../../src/integrations/objstore/s3-upload.js";
import { openSealedSafetensors } from "../../src/integrations/safetensors/index.js";
import { parseIdentityFile, parseRecipient } from "../../src/keys/recipients.js";
import { generateX25519Identity } from "../../src/keys/x25519.js";
import { sandbox } from "../cli/helpers.js";
import { freePort, MOTO_REGION, motoEnv, motoServer, startMoto, stopMoto } from "../keys/moto.js";
import { droppingProxy } from "./dropping-proxy.js";
import { buildSafetensors } from "./helpers.js";

after(() => closeWorkers());

const MOTO = motoServer();
const why = MOTO ? null : "moto_server not found (run scripts/setup-test-deps.sh)";
if (why && process.env.TENSORSEAL_REQUIRE_ALL === "1") {
  test("moto is available (TENSORSEAL_REQUIRE_ALL=1)", () => assert.fail(why));
}

const rejects = (code: string, pattern: RegExp) => (e: unknown) => {
  assert.ok(isTensorSealError(e), `expected a TensorSealError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.match(e.message, pattern);
  return true;
};

describe("object storage in S3 (moto server on loopback)", { skip: why ?? false }, () => {
  const BUCKET = "tseal-models";
  let server: ChildProcess | null = null;
  let s3: S3Client;
  let env: NodeJS.ProcessEnv;
  const sb = sandbox();
  const key = generateX25519Identity();
  const identities = parseIdentityFile(key.identity);
  const idFile = join(sb.dir, "id.txt");
  const plain = randomBytes(21 * 1024 * 1024 + 777); // three 8 MiB parts

  before(async () => {
    const port = await freePort();
    env = motoEnv({ TENSORSEAL_S3_ENDPOINT: `http://127.0.0.1:${port}` });
    Object.assign(process.env, env);
    server = await startMoto(MOTO!, port);
    s3 = s3Client();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    writeFileSync(idFile, `${key.identity}\n`, { mode: 0o600 });
    writeFileSync(join(sb.dir, "w.bin"), plain);
  });

  after(async () => {
    s3?.destroy();
    await stopMoto(server);
    sb.cleanup();
  });

  test("seal -o s3:// (multipart), then open, verify and inspect from s3:// round-trip", async () => {
    const url = `s3://${BUCKET}/models/w.bin.tseal`;
    let r = await sb.runAsync(["seal", join(sb.dir, "w.bin"), "-o", url, "-r", key.recipient], env);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /sealed .*w\.bin -> s3:\/\/tseal-models\/models\/w\.bin\.tseal/);
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: BUCKET, Key: "models/w.bin.tseal" }),
    );
    assert.match(head.ETag ?? "", /-3"$/, "a three-part multipart upload");
    r = await sb.runAsync(["inspect", url, "--json"], env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).plaintextLength, plain.length, "the length is recorded");
    const out = join(sb.dir, "w.out");
    r = await sb.runAsync(["open", url, "-o", out, "-i", idFile], env);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(out).equals(plain));
    r = await sb.runAsync(["verify", url, "-i", idFile], env);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^OK {4}s3:\/\/tseal-models\/models\/w\.bin\.tseal$/m);
    r = await sb.runAsync(["seal", join(sb.dir, "w.bin"), "-o", url, "-r", key.recipient], env);
    assert.equal(r.status, 2, "an existing object needs --force");
    assert.match(r.stderr, /exists: pass --force/);
  });

  test("a whole read from s3:// is the probe and one presigned streamed GET, pinned by If-Match", async () => {
    const proxy = await droppingProxy(env.TENSORSEAL_S3_ENDPOINT!);
    const client = s3Client({ region: MOTO_REGION, endpoint: proxy.base });
    const sent: string[] = [];
    const send = client.send.bind(client);
    client.send = ((cmd: { constructor: { name: string } }, ...rest: unknown[]) => {
      sent.push(cmd.constructor.name);
      return (send as (...a: unknown[]) => Promise<unknown>)(cmd, ...rest);
    }) as typeof client.send;
    try {
      const { openS3Source } = await import("../../src/integrations/objstore/s3-source.js");
      const src = await openS3Source(BUCKET, "models/w.bin.tseal", { client });
      try {
        const loaded = await openSourceToMemory(src, { identities });
        assert.ok(loaded.buffer.equals(plain));
        assert.deepEqual(sent, ["GetObjectCommand"], "only the probe goes through the SDK");
        const { ranges, ifMatches, urls } = proxy.seen;
        assert.equal(ranges.length, 2, JSON.stringify(ranges));
        assert.match(ranges[1] ?? "", /^bytes=65536-\d+$/);
        assert.ok(ifMatches[1], "the body GET is pinned to the probed ETag");
        const q = new URL(urls[1]!, proxy.base).searchParams;
        assert.match(
          q.get("X-Amz-SignedHeaders") ?? "",
          /(^|;)if-match(;|$)/,
          "If-Match is signed",
        );
        assert.match(q.get("X-Amz-SignedHeaders") ?? "", /(^|;)range(;|$)/, "Range is signed");
        assert.ok(Number(q.get("X-Amz-Expires")) <= 900, "a short expiry");
      } finally {
        await src.close();
      }
    } finally {
      client.destroy();
      await proxy.close();
    }
  });

  test("a presigned GET's failures name the s3:// URL, never its signature, credential or token", async () => {
    // After the probe, every request gets `mode`'s answer; the 403 echoes the query string as
    // S3's SignatureDoesNotMatch does (CanonicalRequest, StringToSign).
    let mode: "403" | "malformed" | "drop" = "403";
    let requests = 0;
    let signed = "";
    const up = new URL(env.TENSORSEAL_S3_ENDPOINT!);
    const hostile = createServer((req, res) => {
      if (requests++ === 0) {
        const fwd = request(
          {
            host: up.hostname,
            port: up.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
          },
          (a) => {
            res.writeHead(a.statusCode ?? 502, a.headers);
            a.pipe(res);
          },
        );
        req.pipe(fwd);
        return;
      }
      signed = req.url ?? "";
      if (mode === "drop") return void req.socket.destroy();
      if (mode === "malformed") {
        req.socket.end(`HTTP/1.1 206 Partial\r\nContent-Length: 1${req.url}\r\n\r\n`);
        return;
      }
      const body = `<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><CanonicalRequest>GET ${req.url}</CanonicalRequest></Error>`;
      res.writeHead(403, {
        "content-type": "application/xml",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
    });
    await new Promise<void>((r) => hostile.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(hostile.address() as { port: number }).port}`;
    process.env.AWS_SESSION_TOKEN = "SESSIONTOKENSECRET";
    const client = s3Client({ region: MOTO_REGION, endpoint: base });
    const secret = /X-Amz-(Signature|Credential|Security-Token)|SESSIONTOKENSECRET|testing%2F/i;
    const { openS3Source } = await import("../../src/integrations/objstore/s3-source.js");
    try {
      for (const [m, pattern] of [
        ["403", /GetObject failed: AWS credentials rejected/],
        ["malformed", /GetObject failed: the server's answer is malformed HTTP\/1\.1/],
        ["drop", /the download kept breaking off \(connection failed \(ECONNRESET\)\)/],
      ] as const) {
        mode = m;
        requests = 0;
        const src = await openS3Source(BUCKET, "models/w.bin.tseal", { client, backoffMs: 1 });
        try {
          await assert.rejects(openSourceToMemory(src, { identities }), (e: unknown) => {
            assert.ok(isTensorSealError(e), String(e));
            assert.match(e.message, /^s3:\/\/tseal-models\/models\/w\.bin\.tseal: /);
            assert.match(e.message, pattern);
            const all = `${e.message}\n${e.stack}\n${inspect(e, { depth: 8 })}`;
            assert.doesNotMatch(all, secret, `${m}: ${all}`);
            return true;
          });
          assert.ok(requests >= 2, `${m}: the body GET reached the server`);
          // The secrets were there to leak: the URL carried them.
          assert.match(signed, /X-Amz-Signature=[0-9a-f]{64}/);
          assert.match(signed, /X-Amz-Security-Token=SESSIONTOKENSECRET/);
        } finally {
          await src.close();
        }
      }
    } finally {
      delete process.env.AWS_SESSION_TOKEN;
      client.destroy();
      await new Promise<void>((r) => hostile.close(() => r()));
    }
  });

  test("a GetObject body dropped mid-stream resumes with a Range from the first byte not received", async () => {
    const proxy = await droppingProxy(env.TENSORSEAL_S3_ENDPOINT!);
    const client = s3Client({ region: MOTO_REGION, endpoint: proxy.base });
    try {
      const { openS3Source } = await import("../../src/integrations/objstore/s3-source.js");
      const src = await openS3Source(BUCKET, "models/w.bin.tseal", { client, backoffMs: 1 });
      try {
        proxy.drop(2, 5 << 20);
        const loaded = await openSourceToMemory(src, { identities });
        assert.ok(loaded.buffer.equals(plain));
        assert.equal(proxy.seen.dropped, 2);
        const starts = proxy.seen.ranges
          .slice(1)
          .map((r) => Number(/^bytes=(\d+)-/.exec(r ?? "")?.[1]));
        assert.deepEqual(
          starts,
          [65536, 65536 + (5 << 20), 65536 + (10 << 20)],
          JSON.stringify(proxy.seen.ranges),
        );
      } finally {
        await src.close();
      }
    } finally {
      client.destroy();
      await proxy.close();
    }
  });

  test("the lazy tensor API reads one tensor from s3://", async () => {
    const tensors = Array.from({ length: 6 }, (_, i) => ({
      name: `w${i}`,
      dtype: "F32",
      shape: [256, 256],
      data: randomBytes(4 * 256 * 256),
    }));
    const model = buildSafetensors(tensors);
    await sealToS3(Readable.from([model]), BUCKET, "m.safetensors.tseal", {
      recipients: [parseRecipient(key.recipient)],
      plaintextLength: model.length,
      chunkSize: 64 << 10,
      client: s3,
    });
    const st = await openSealedSafetensors(`s3://${BUCKET}/m.safetensors.tseal`, identities);
    try {
      assert.deepEqual(
        Object.keys(st.tensors),
        tensors.map((t) => t.name),
      );
      assert.ok((await st.getTensorBytes("w3")).equals(tensors[3]!.data));
      assert.ok(st.stats.bytes < model.length / 2, "only the chunks asked for were decrypted");
    } finally {
      await st.close();
    }
  });

  test("a failed upload leaves no object and no multipart upload behind", async () => {
    let sent = 0;
    const failing = new Readable({
      read() {
        if (sent >= 20 << 20) {
          this.destroy(new Error("input device failed"));
          return;
        }
        sent += 1 << 20;
        this.push(randomBytes(1 << 20));
      },
    });
    // A client that records the commands it sends: the upload did start (parts were sent).
    const client = s3Client();
    const commands: string[] = [];
    const send = client.send.bind(client);
    client.send = ((cmd: { constructor: { name: string } }, ...rest: unknown[]) => {
      commands.push(cmd.constructor.name);
      return (send as (...a: unknown[]) => Promise<unknown>)(cmd, ...rest);
    }) as typeof client.send;
    try {
      await assert.rejects(
        sealToS3(failing, BUCKET, "broken.tseal", {
          recipients: [parseRecipient(key.recipient)],
          client,
        }),
        /input device failed/,
      );
    } finally {
      client.destroy();
    }
    assert.ok(commands.includes("CreateMultipartUploadCommand"), commands.join());
    assert.ok(commands.includes("UploadPartCommand"), commands.join());
    assert.ok(commands.includes("AbortMultipartUploadCommand"), commands.join());
    assert.ok(!commands.includes("CompleteMultipartUploadCommand"), commands.join());
    await assert.rejects(
      s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "broken.tseal" })),
      (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 404,
    );
    const mpu = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
    assert.deepEqual(mpu.Uploads ?? [], [], "the multipart upload was aborted");
    // A length that does not match the input fails too, before the final chunk.
    await assert.rejects(
      sealToS3(Readable.from([randomBytes(1000)]), BUCKET, "short.tseal", {
        recipients: [parseRecipient(key.recipient)],
        plaintextLength: 2000,
        client: s3,
      }),
      rejects("E_IO", /input held 1000 bytes, not the 2000 recorded/),
    );
    await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "short.tseal" })));
  });

  test("an object replaced mid-read fails on its ETag; a tampered object is rejected", async () => {
    const url = `s3://${BUCKET}/models/w.bin.tseal`;
    const sealed = Buffer.from(
      await (
        await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "models/w.bin.tseal" }))
      ).Body!.transformToByteArray(),
    );
    const src = await openObjectSource(url);
    try {
      const tampered = Buffer.from(sealed);
      tampered.writeUInt8(tampered[tampered.length - 100]! ^ 1, tampered.length - 100);
      await s3.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: "models/w.bin.tseal", Body: tampered }),
      );
      await assert.rejects(
        openSource(src, join(sb.dir, "swap.out"), { identities }),
        rejects(
          "E_IO",
          /s3:\/\/tseal-models\/models\/w\.bin\.tseal: GetObject failed: the object changed/,
        ),
      );
    } finally {
      await src.close();
    }
    const fresh = await openObjectSource(url);
    try {
      await assert.rejects(
        openSource(fresh, join(sb.dir, "bad.out"), { identities }),
        rejects("E_DECRYPT", /^s3:\/\/tseal-models\/models\/w\.bin\.tseal: chunk \d+ failed/),
      );
    } finally {
      await fresh.close();
    }
  });
});
