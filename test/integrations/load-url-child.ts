/**
 * Run as its own process by objstore-memory.test.ts: a full load of argv[2] (a sealed file's
 * URL) into memory with openSourceToMemory, identity file argv[3]. Prints JSON: the peak RSS
 * (KiB) before the load (modules loaded, nothing fetched) and after it, and the plaintext size.
 */
import { readFileSync } from "node:fs";
import { closeWorkers, openSourceToMemory } from "../../src/engine/index.js";
import { openObjectSource } from "../../src/integrations/objstore/index.js";
import { parseIdentityFile } from "../../src/keys/recipients.js";
import { peakRssKiB } from "../cli/max-rss-reporter.js";

const identities = parseIdentityFile(readFileSync(process.argv[3]!, "utf8"));
const before = peakRssKiB();
const src = await openObjectSource(process.argv[2]!);
try {
  const { buffer } = await openSourceToMemory(src, { identities });
  const after = peakRssKiB();
  buffer.fill(0);
  process.stdout.write(JSON.stringify({ before, after, plaintext: buffer.length }));
} finally {
  await src.close();
  await closeWorkers();
}
