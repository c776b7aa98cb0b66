/**
 * Peak memory of whole reads from a URL (issue 11, issue 14 §2): a 256 MiB sealed object opened
 * by the CLI from the loopback Range server to /dev/null stays under a fixed bound whatever its
 * size (one streamed GET, a few small batches alive, plaintext buffers reused), and a full load
 * into memory costs the plaintext's buffer plus a fixed bound, never a second copy.
 * The same open from s3:// (moto's server), whose streamed GetObject is presigned and read by
 * the same reader (s3-stream.ts). Measured as the child's own peak RSS (VmHWM:
 * test/cli/max-rss-reporter.ts).
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { closeWorkers, sealFile } from "../../src/engine/index.js";
import { s3Client } from "../../src/integrations/objstore/s3-client.js";
import { parseRecipient } from "../../src/keys/recipients.js";
import { generateX25519Identity } from "../../src/keys/x25519.js";
import { sandbox } from "../cli/helpers.js";
import { cliPeakKib } from "../cli/peak-rss.js";
import { freePort, MOTO_REGION, motoEnv, motoServer, startMoto, stopMoto } from "../keys/moto.js";
import { type RangeServer, rangeServer } from "./range-server.js";

after(() => closeWorkers());

const here = dirname(fileURLToPath(import.meta.url));
const MiB = 1 << 20;
const SIZE = 256 * MiB;
/**
 * Issue 11's goal, the same on Node 20 and 24: the streamed GET is read off the socket into one
 * reused buffer (http1.ts). Measured 2026-12-05 on the loaded 2-core machine, 256 and 512 MiB:
 * 74-76 MiB on Node 20.20, 84-88 MiB on Node 24.22 (108-111 and 157-183 MiB before, through
 * node:http's fresh buffer per read: docs/BENCHMARKS.md). Fails a whole-object buffer, a second
 * copy, or node:http's per-read garbage coming back.
 */
const CLI_BOUND_KIB = 96 * 1024;

/** A load's peak beyond the plaintext: 22-36 MiB measured on both runtimes (57-104 before). */
const LOAD_EXTRA_KIB = 64 * 1024;

describe("peak memory of whole reads from a URL (loopback server)", () => {
  const sb = sandbox();
  const key = generateX25519Identity();
  const idFile = join(sb.dir, "id.txt");
  let server: RangeServer;
  let url = "";

  before(async () => {
    writeFileSync(idFile, `${key.identity}\n`, { mode: 0o600 });
    const plainPath = join(sb.dir, "big.bin");
    const fd = openSync(plainPath, "w");
    const block = randomBytes(8 * MiB);
    for (let at = 0; at < SIZE; at += block.length) writeSync(fd, block);
    closeSync(fd);
    await sealFile(plainPath, `${plainPath}.tseal`, {
      recipients: [parseRecipient(key.recipient)],
    });
    server = await rangeServer();
    server.put("/big.bin.tseal", readFileSync(`${plainPath}.tseal`));
    url = `${server.base}/big.bin.tseal`;
  });
  after(async () => {
    await server?.close();
    sb.cleanup();
  });

  test(`tensorseal open URL -o /dev/null of ${SIZE / MiB} MiB peaks under ${CLI_BOUND_KIB / 1024} MiB`, async () => {
    const peak = await cliPeakKib(sb, ["open", url, "-i", idFile, "-o", "/dev/null"]);
    assert.ok(
      peak <= CLI_BOUND_KIB,
      `peak RSS ${Math.round(peak / 1024)} MiB over the bound ${CLI_BOUND_KIB / 1024} MiB`,
    );
  });

  test("a full load into memory costs the plaintext plus a fixed bound (no second copy)", async () => {
    const child = spawn(process.execPath, [join(here, "load-url-child.js"), url, idFile], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const status = await new Promise<number | null>((r) => child.on("close", r));
    assert.equal(status, 0, stderr);
    const m = JSON.parse(stdout) as { before: number; after: number; plaintext: number };
    assert.equal(m.plaintext, SIZE);
    const grew = m.after - m.before;
    assert.ok(
      grew <= SIZE / 1024 + LOAD_EXTRA_KIB,
      `peak RSS grew ${Math.round(grew / 1024)} MiB for ${SIZE / MiB} MiB of plaintext (bound: plus ${LOAD_EXTRA_KIB / 1024} MiB)`,
    );
  });
});

/**
 * The same streamed read presigned by the SDK and read by http1.ts: 85-86 MiB on Node 20 and
 * 100-102 MiB on Node 24 (2026-12-05, 256 MiB from moto; 120-150 and 176-231 MiB through the
 * SDK's node:http handler: docs/BENCHMARKS.md), most of Node 24's excess over the https:// open
 * being the AWS SDK's own code (require("@aws-sdk/client-s3") alone: +34 MiB of RSS on Node 24,
 * +22 on Node 20). With a long run's V8 flags (no optimizing compilers, code-cache.ts
 * LEAN_V8_FLAGS, which a URL input gets): 81-82 MiB on Node 20 and 92-94 on Node 24 measured
 * as here (the reporter's preload included), so issue 11's 96 MiB holds on both.
 */
const S3_CLI_BOUND_KIB = 96 * 1024;
const MOTO = motoServer();
const noMoto = MOTO ? null : "moto_server not found (run scripts/setup-test-deps.sh)";
if (noMoto && process.env.TENSORSEAL_REQUIRE_ALL === "1") {
  test("moto is available (TENSORSEAL_REQUIRE_ALL=1)", () => assert.fail(noMoto));
}

describe("peak memory of a whole read from s3:// (moto server)", { skip: noMoto ?? false }, () => {
  const sb = sandbox();
  const key = generateX25519Identity();
  const idFile = join(sb.dir, "id.txt");
  let server: ChildProcess | null = null;
  let env: NodeJS.ProcessEnv = {};

  before(async () => {
    writeFileSync(idFile, `${key.identity}\n`, { mode: 0o600 });
    const plainPath = join(sb.dir, "big.bin");
    const fd = openSync(plainPath, "w");
    const block = randomBytes(8 * MiB);
    for (let at = 0; at < SIZE; at += block.length) writeSync(fd, block);
    closeSync(fd);
    await sealFile(plainPath, `${plainPath}.tseal`, {
      recipients: [parseRecipient(key.recipient)],
    });
    const port = await freePort();
    env = motoEnv({ TENSORSEAL_S3_ENDPOINT: `http://127.0.0.1:${port}` });
    server = await startMoto(MOTO!, port);
    const s3 = s3Client({ region: MOTO_REGION, endpoint: env.TENSORSEAL_S3_ENDPOINT! });
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: "mem" }));
      await s3.send(
        new PutObjectCommand({
          Bucket: "mem",
          Key: "big.bin.tseal",
          Body: readFileSync(`${plainPath}.tseal`),
        }),
      );
    } finally {
      s3.destroy();
      process.env = saved;
    }
  });
  after(async () => {
    await stopMoto(server);
    sb.cleanup();
  });

  test(`tensorseal open s3://... -o /dev/null of ${SIZE / MiB} MiB peaks under ${S3_CLI_BOUND_KIB / 1024} MiB`, async () => {
    const args = ["open", "s3://mem/big.bin.tseal", "-i", idFile, "-o", "/dev/null"];
    const peak = await cliPeakKib(sb, args, env);
    assert.ok(
      peak <= S3_CLI_BOUND_KIB,
      `peak RSS ${Math.round(peak / 1024)} MiB over the bound ${S3_CLI_BOUND_KIB / 1024} MiB`,
    );
  });
});
