/**
 * One benchmark operation in its own process, so its peak RSS is its own:
 *   node dist/bench/op.js seal|open|verify|seal-mem IN OUT KEKHEX CHUNK
 *   node dist/bench/op.js seal-stream|open-stream - - KEKHEX CHUNK   (stdin to stdout)
 * Prints one JSON line: { seconds, maxRssMiB } (to stderr for the stream kinds).
 * `seal-mem` runs the engine's parallel range sealer into /dev/null: encryption throughput
 * without the cost of allocating fresh pages for an output file. With BENCH_WARM=1 the worker
 * threads are started before the clock (a long-lived process); otherwise their start-up counts.
 */
import { randomBytes } from "node:crypto";
import { openSync, statSync } from "node:fs";
import { openFile, openStream, sealFile, sealStream, verifyFile } from "../src/engine/index.js";
import { Progress } from "../src/engine/progress.js";
import { prewarmWorkers, runRanges } from "../src/engine/run-ranges.js";
import { deriveChunkKeys, PAYLOAD_PREFIX_SIZE } from "../src/format/chunked.js";
import { kekIdentity, kekRecipient } from "../src/keys/kek.js";

const [op, input, output, kekHex, chunk] = process.argv.slice(2);
const kek = Buffer.from(kekHex!, "hex");
const ref = { name: "bench", version: 1 };
const identities = [kekIdentity("bench", (r) => (r.name === "bench" ? kek : null))];
const chunkSize = Number(chunk);

async function sealToNull(): Promise<void> {
  const length = statSync(input!).size;
  const keys = deriveChunkKeys(randomBytes(32), randomBytes(24), Buffer.alloc(0), chunkSize);
  await runRanges({
    mode: "seal",
    inFd: openSync(input!, "r"),
    sink: { kind: "fd", fd: openSync("/dev/null", "w") },
    keys,
    chunkSize,
    plaintextLength: length,
    chunksOffset: PAYLOAD_PREFIX_SIZE,
    progress: new Progress(length, undefined),
  });
}

if (process.env.BENCH_WARM === "1") await prewarmWorkers(statSync(input!).size, undefined);
const start = process.hrtime.bigint();
if (op === "seal")
  await sealFile(input!, output!, { recipients: [kekRecipient(ref, kek)], chunkSize });
else if (op === "seal-mem") await sealToNull();
else if (op === "open") await openFile(input!, output!, { identities });
else if (op === "seal-stream")
  await sealStream(process.stdin, process.stdout, {
    recipients: [kekRecipient(ref, kek)],
    chunkSize,
  });
else if (op === "open-stream") await openStream(process.stdin, process.stdout, { identities });
else await verifyFile(input!, { identities });
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const report = op?.endsWith("-stream") ? process.stderr : process.stdout;
report.write(`${JSON.stringify({ seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`);
process.exit(0);
