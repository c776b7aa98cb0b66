/**
 * Rotation campaign benchmark (issue #3 §5): 10,000 small sealed files under kek:default v1,
 * rotate, then `rewrapToLatest` over the directory (the library behind `tensorseal rewrap
 * --to-latest DIR`). Prints the elapsed time against the 30 s goal, header bytes written vs
 * payload bytes, and proves no payload byte changed by hashing every file's payload region
 * before and after. Run: npm run bench:rotation [-- FILES]
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readHeader, sealMessage } from "../src/format/message.js";
import { unlockFileKey } from "../src/format/unlock.js";
import { rewrapToLatest } from "../src/keys/campaign.js";
import { expandPaths } from "../src/keys/campaign-paths.js";
import { parseKekStanza } from "../src/keys/kek.js";
import { Keystore } from "../src/keys/keystore.js";

const FILES = Number(process.argv[2] ?? 10_000);
const GOAL_S = 30;

async function payloadDigest(path: string): Promise<{ digest: string; payload: number }> {
  const b = await readFile(path);
  const h = readHeader(b);
  const payload = b.subarray(h.headerLength);
  return { digest: createHash("sha256").update(payload).digest("hex"), payload: payload.length };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "tseal-bench-rotation-"));
  try {
    const keyFile = join(dir, "root.key");
    await writeFile(keyFile, randomBytes(32).toString("hex"), { mode: 0o600 });
    const ks = await Keystore.init(join(dir, "home"), { rootKeyFile: keyFile });
    await ks.createKey("default");
    const files = join(dir, "files");
    let t = performance.now();
    for (let d = 0; d < FILES / 1000; d++) await mkdir(join(files, `d${d}`), { recursive: true });
    const recipient = ks.recipient("default");
    for (let i = 0; i < FILES; i++) {
      const fk = randomBytes(32);
      const sealed = sealMessage(randomBytes(256 + (i % 1024)), fk, [await recipient.wrap(fk)], {
        chunkSize: 16384,
      });
      await writeFile(join(files, `d${Math.floor(i / 1000)}`, `f${i}.tseal`), sealed);
    }
    await ks.flush();
    console.log(`setup: sealed ${FILES} files in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const paths = await expandPaths([files]);
    const before = await Promise.all(paths.map(payloadDigest));
    await ks.rotateKey("default");

    t = performance.now();
    const r = await rewrapToLatest(ks, { files: paths, journal: join(dir, "journal.jsonl") });
    const elapsed = (performance.now() - t) / 1000;
    await ks.flush();

    const after = await Promise.all(paths.map(payloadDigest));
    const changed = after.filter((a, i) => a.digest !== before[i]!.digest).length;
    const payloadBytes = after.reduce((n, a) => n + a.payload, 0);
    let current = 0;
    for (const p of paths) {
      const h = readHeader(await readFile(p));
      if (h.stanzas.every((s) => parseKekStanza(s).version === 2)) current++;
    }
    // A sample opens with the new version alone (v1 disabled).
    await ks.setKey("default", { minDecryptionVersion: 2 });
    for (const p of paths.slice(0, 50)) {
      (await unlockFileKey(readHeader(await readFile(p)), [ks.identity()])).fill(0);
    }
    console.log(
      `rotation campaign: ${FILES} files, rewrapped ${r.rewrapped}, already current ${r.current}, failed ${r.failed}`,
    );
    console.log(
      `elapsed ${elapsed.toFixed(2)} s (goal <= ${GOAL_S} s: ${(elapsed / GOAL_S).toFixed(2)} of the limit), ${(FILES / elapsed).toFixed(0)} files/s`,
    );
    console.log(
      `bytes written: ${r.headerBytesWritten} header bytes (2 slots x ${r.headerBytesWritten / Math.max(1, r.rewrapped) / 2} per file), 0 payload bytes; payload bytes in the files: ${payloadBytes}`,
    );
    console.log(
      `payload regions hashed before/after: ${changed} of ${FILES} changed; ${current} of ${FILES} files now current`,
    );
    if (changed !== 0 || current !== FILES || r.failed !== 0) process.exitCode = 1;
    ks.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
