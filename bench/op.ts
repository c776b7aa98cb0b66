/**
 * One benchmark operation in its own process, so its peak RSS is its own:
 *   node dist/bench/op.js seal|open|verify IN OUT KEKHEX CHUNK
 * Prints one JSON line: { seconds, maxRssMiB }.
 */
import { openFile, sealFile, verifyFile } from "../src/engine/index.js";
import { kekIdentity, kekRecipient } from "../src/keys/kek.js";

const [op, input, output, kekHex, chunk] = process.argv.slice(2);
const kek = Buffer.from(kekHex!, "hex");
const ref = { name: "bench", version: 1 };
const start = process.hrtime.bigint();
if (op === "seal") {
  await sealFile(input!, output!, {
    recipients: [kekRecipient(ref, kek)],
    chunkSize: Number(chunk),
  });
} else {
  const identities = [kekIdentity("bench", (r) => (r.name === "bench" ? kek : null))];
  if (op === "open") await openFile(input!, output!, { identities });
  else await verifyFile(input!, { identities });
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
process.stdout.write(
  `${JSON.stringify({ seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`,
);
