/**
 * Reseal throughput (issue 13 §1): `resealFile` (open under the old file key and seal under a
 * fresh one, one parallel pass, atomic replace) against `sealFile` of the same plaintext, in the
 * same run, alternating, median of ROUNDS each. Goal: reseal >= 0.8x seal. Both write a temp
 * file, fsync it and rename it into place; reseal reads sealed bytes and does twice the cipher
 * work (decrypt and encrypt). Run: npm run bench:reseal [-- MIB [ROUNDS]]
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { closeWorkers, resealFile, sealFile } from "../src/engine/index.js";
import { nativeGcm } from "../src/engine/native-gcm.js";
import { kekIdentity, kekRecipient } from "../src/keys/kek.js";

const MIB = Number(process.argv[2] ?? 256);
const ROUNDS = Number(process.argv[3] ?? 5);
const GOAL = 0.8;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "tseal-bench-reseal-"));
  try {
    const bytes = MIB << 20;
    const input = join(dir, "plain.bin");
    // Cheap pseudo-random data: a random 1 MiB block repeated (the cipher does not care).
    const block = randomBytes(1 << 20);
    await writeFile(input, Buffer.concat(Array.from({ length: MIB }, () => block)));
    const kek = randomBytes(32);
    const recipient = kekRecipient({ name: "bench", version: 1 }, kek);
    const identity = kekIdentity("kek:bench", (r) => (r.name === "bench" ? kek : null));
    const sealed = join(dir, "sealed.tseal");
    const resealed = join(dir, "resealed.tseal");
    await sealFile(input, resealed, { recipients: [recipient] }); // warm-up, and reseal's input
    const seal: number[] = [];
    const reseal: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      let t = performance.now();
      await sealFile(input, sealed, { recipients: [recipient] });
      seal.push(performance.now() - t);
      t = performance.now();
      await resealFile(resealed, { identities: [identity], recipients: async () => [recipient] });
      reseal.push(performance.now() - t);
    }
    console.log(
      `rounds (ms): seal ${seal.map((x) => x.toFixed(0)).join(" ")}; reseal ${reseal.map((x) => x.toFixed(0)).join(" ")}`,
    );
    const rate = (ms: number) => (bytes / (1 << 20) / (ms / 1000)).toFixed(0);
    const [s, r] = [median(seal), median(reseal)];
    const ratio = s / r;
    console.log(
      `${MIB} MiB, ${availableParallelism()} CPUs, native addon ${nativeGcm ? "on" : "off"}, median of ${ROUNDS}`,
    );
    console.log(`seal   ${s.toFixed(0)} ms  ${rate(s)} MiB/s`);
    console.log(`reseal ${r.toFixed(0)} ms  ${rate(r)} MiB/s`);
    console.log(
      `reseal/seal throughput ${ratio.toFixed(2)}x (goal >= ${GOAL}x): ${ratio >= GOAL ? "met" : "NOT met"}`,
    );
  } finally {
    await closeWorkers();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
