/**
 * Peak memory of a file sealed or opened into a device (`-o /dev/null`, a FIFO, /dev/stdout),
 * issue 11: the file is read as `-o -` reads it (engine/stream-file.ts: preads from offset 0
 * into reused buffers, or batches mapped for sealing), so a 256 MiB file peaks under the same
 * fixed bound as the other streams whatever its size. Through a ReadStream (a fresh 64 KiB
 * buffer per read) the same runs peaked at 99-117 MiB on Node 20.20 and 133-135 MiB on
 * Node 24.22 (1 GiB: 101-111 and 146-200 MiB); read by stream-file.ts, 64-69 and 71-74 MiB
 * (2026-12-05, docs/BENCHMARKS.md). The stream paths run on the main thread alone, so the
 * bound does not depend on the number of cores. Measured as the child's own peak RSS (VmHWM:
 * max-rss-reporter.ts).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { generateX25519Identity } from "../../src/keys/x25519.js";
import { sandbox } from "./helpers.js";
import { cliPeakKib } from "./peak-rss.js";

const MiB = 1 << 20;
const SIZE = 256 * MiB;
/** Issue 11's goal, on Node 20 and 24 alike. */
const BOUND_KIB = 96 * 1024;

describe("peak memory of a file sealed or opened into a device", () => {
  const sb = sandbox();
  const key = generateX25519Identity();
  const idFile = join(sb.dir, "id.txt");
  const plain = join(sb.dir, "big.bin");
  const sealed = join(sb.dir, "big.bin.tseal");

  before(() => {
    writeFileSync(idFile, `${key.identity}\n`, { mode: 0o600 });
    const fd = openSync(plain, "w");
    const block = randomBytes(8 * MiB);
    for (let at = 0; at < SIZE; at += block.length) writeSync(fd, block);
    closeSync(fd);
    const r = sb.run(["seal", plain, "-r", key.recipient, "-o", sealed]);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => sb.cleanup());

  for (const [what, args] of [
    ["seal", () => ["seal", plain, "-r", key.recipient, "-o", "/dev/null"]],
    ["open", () => ["open", sealed, "-i", idFile, "-o", "/dev/null"]],
  ] as const) {
    test(`tensorseal ${what} FILE -o /dev/null of ${SIZE / MiB} MiB peaks under ${BOUND_KIB / 1024} MiB`, async () => {
      const peak = await cliPeakKib(sb, args());
      assert.ok(
        peak <= BOUND_KIB,
        `peak RSS ${Math.round(peak / 1024)} MiB over the bound ${BOUND_KIB / 1024} MiB`,
      );
    });
  }
});
