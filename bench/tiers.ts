/**
 * What each sensitivity tier costs, next to the default (untiered) seal, in the same run:
 *   node dist/bench/tiers.js [MIB] [ROUNDS] [TIMED_ROUNDS]
 * Every tier but public uses the same payload suite (AES-256-GCM chunked, spec/FORMAT.md §4), so
 * what it changes is its recipients (what it allows) and the metadata in the header; the
 * built-in public tier is sealed integrity-only (suite 2, §2.5: GMAC tags, the key published,
 * one thread), and the row "public (encrypt: true)" is the same tier configured encrypted, as it
 * was before. For each row: the recipients a compliant file of that tier gets here (restricted:
 * a post-quantum public key, the one allowed kind that needs no HSM, KMS or service), the
 * header's used bytes (descriptor + active slot body), the unlock latency (unlockFileKey: unwrap
 * of the stanza with its identity and the header MAC, median of ROUNDS), and seal and open
 * throughput of a MIB file and of a 64 KiB file (a config) through the engine (best of
 * TIMED_ROUNDS rounds that alternate the rows, after a warm-up round; page cache warm), with the ratio to the first row measured in the same run. Prints a Markdown table
 * for docs/BENCHMARKS.md.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeWorkers, inspectFile, openFile, sealFile } from "../src/engine/index.js";
import { deriveChunkKeys, openChunk, sealChunk } from "../src/format/chunked.js";
import { encodeDescriptor } from "../src/format/descriptor.js";
import { makeDescriptor } from "../src/format/message.js";
import { withMetadata } from "../src/format/metadata.js";
import { payloadContext } from "../src/format/payload.js";
import { publicRecipient, SUITE_PUBLIC } from "../src/format/public.js";
import type { Identity, Recipient } from "../src/format/stanza.js";
import { unlockFileKey } from "../src/format/unlock.js";
import { kekIdentity, kekRecipient } from "../src/keys/kek.js";
import {
  generateX25519Identity,
  parseX25519Identity,
  parseX25519Recipient,
} from "../src/keys/x25519.js";
import {
  generateXWingIdentity,
  parseXWingIdentity,
  parseXWingRecipient,
} from "../src/keys/xwing.js";
import { BUILTIN_TIERS, kindViolations, recipientKind } from "../src/tiers/policy.js";

const MIB = Number(process.argv[2] ?? 256);
const ROUNDS = Number(process.argv[3] ?? 50);

const kek = randomBytes(32);
const ref = { name: "bench", version: 1 };
const kekR = kekRecipient(ref, kek);
const kekI = kekIdentity("kek:bench", (r) => (r.name === ref.name ? kek : null));
const x = generateX25519Identity();
const pq = await generateXWingIdentity();
const xR = parseX25519Recipient(x.recipient);
const pqR = parseXWingRecipient(pq.recipient);

interface Row {
  tier: string | null;
  recipients: Recipient[];
  identity: Identity | null;
  label?: string;
  suite?: number;
}
const rows: Row[] = [
  { tier: null, recipients: [kekR], identity: kekI },
  { tier: "public", recipients: [publicRecipient()], identity: null, suite: SUITE_PUBLIC },
  { tier: "public", recipients: [kekR], identity: kekI, label: "public (encrypt: true)" },
  { tier: "internal", recipients: [kekR], identity: kekI },
  { tier: "confidential", recipients: [kekR, xR], identity: parseX25519Identity(x.identity) },
  { tier: "restricted", recipients: [pqR], identity: parseXWingIdentity(pq.identity) },
];

const dir = mkdtempSync(join(tmpdir(), "tensorseal-bench-tiers-"));
const plain = join(dir, "plain.bin");
writeFileSync(plain, randomBytes(MIB << 20));
const small = join(dir, "config.json");
writeFileSync(small, randomBytes(64 << 10));
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`node ${process.version}, ${MIB} MiB, unlock median of ${ROUNDS}`);
console.log(
  `| tier | recipients | header bytes used | unlock p50 | seal ${MIB} MiB, MiB/s (ratio) | open ${MIB} MiB, MiB/s (ratio) | seal 64 KiB, ms | open 64 KiB, ms |`,
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
const ROUNDS_TIMED = Number(process.argv[4] ?? 5);
/** Wall time (ms) of fn. */
async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return ms(t);
}
try {
  const jobs = rows.map((row) => {
    const ids = row.recipients.map((r) => r.id);
    const tier = BUILTIN_TIERS.find((t) => t.name === row.tier);
    if (tier && kindViolations(tier, ids.map(recipientKind)).length > 0)
      throw new Error(`bench recipients break tier ${row.tier}`);
    const labels = withMetadata(
      { model: "bench" },
      row.tier ? { tier: row.tier, owner: "ml-platform@example.com", purpose: "bench" } : {},
    );
    const name = (row.label ?? row.tier ?? "default").replace(/[^a-z]+/g, "-");
    return {
      row,
      ids,
      sealed: join(dir, `${name}.tseal`),
      sealedSmall: join(dir, `${name}-small.tseal`),
      opts: { recipients: row.recipients, labels, ...(row.suite ? { suite: row.suite } : {}) },
      identities: row.identity ? [row.identity] : [],
      best: { seal: Infinity, open: Infinity, sealSmall: Infinity, openSmall: Infinity },
    };
  });
  // Rounds alternate the rows (the load of this machine drifts); each row keeps its best.
  for (let round = 0; round <= ROUNDS_TIMED; round++) {
    for (const j of jobs) {
      const t = {
        seal: await time(() => sealFile(plain, j.sealed, j.opts)),
        open: await time(() =>
          openFile(j.sealed, join(dir, "out.bin"), { identities: j.identities }),
        ),
        sealSmall: await time(() => sealFile(small, j.sealedSmall, j.opts)),
        openSmall: await time(() =>
          openFile(j.sealedSmall, join(dir, "out-small.bin"), { identities: j.identities }),
        ),
      };
      if (round === 0) continue; // warm-up: workers, page cache, JIT
      for (const k of Object.keys(t) as (keyof typeof t)[]) j.best[k] = Math.min(j.best[k], t[k]);
    }
  }
  const rate = (t: number) => (MIB * 1000) / t;
  const base = { seal: rate(jobs[0]!.best.seal), open: rate(jobs[0]!.best.open) };
  const cell = (r: number, b: number) => `${r.toFixed(0)} (${(r / b).toFixed(2)})`;
  for (const j of jobs) {
    const h = await inspectFile(j.sealed);
    const used = h.descriptorBytes.length + h.bodyBytes.length;
    const unlock: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t = process.hrtime.bigint();
      (await unlockFileKey(h, j.identities)).fill(0);
      unlock.push(ms(t));
    }
    const { row, best } = j;
    console.log(
      `| ${row.label ?? row.tier ?? "(none, default)"} | ${j.ids.map((i) => recipientKind(i)).join(" + ")} | ${used} | ${median(unlock).toFixed(3)} ms | ${cell(rate(best.seal), base.seal)} | ${cell(rate(best.open), base.open)} | ${best.sealSmall.toFixed(2)} | ${best.openSmall.toFixed(2)} |`,
    );
  }
  // The chunk operation alone, one thread, 1 MiB chunks, alternated: what suite 2 costs per byte
  // next to suite 1 without the engine's parallelism and I/O (spec §2.5: GMAC vs AES-GCM).
  const chunk = randomBytes(1 << 20);
  const keysOf = (suite: number) =>
    deriveChunkKeys(
      randomBytes(32),
      randomBytes(24),
      payloadContext(
        encodeDescriptor(makeDescriptor({ suite, labels: { "tensorseal:tier": "public" } }, 0)),
      ),
      1 << 20,
    );
  const k1 = keysOf(1);
  const k2 = keysOf(SUITE_PUBLIC);
  const sealed1 = sealChunk(k1, 0, chunk);
  const sealed2 = sealChunk(k2, 0, chunk);
  const op = { seal1: Infinity, seal2: Infinity, open1: Infinity, open2: Infinity };
  for (let r = 0; r < 20; r++) {
    const t = (fn: () => unknown) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < 8; i++) fn();
      return ms(t0) / 8;
    };
    op.seal1 = Math.min(
      op.seal1,
      t(() => sealChunk(k1, 1, chunk)),
    );
    op.seal2 = Math.min(
      op.seal2,
      t(() => sealChunk(k2, 1, chunk)),
    );
    op.open1 = Math.min(
      op.open1,
      t(() => openChunk(k1, 0, sealed1)),
    );
    op.open2 = Math.min(
      op.open2,
      t(() => openChunk(k2, 0, sealed2)),
    );
  }
  const gib = (t: number) => (1000 / t / 1024).toFixed(2);
  console.log(
    `\nchunk op, 1 MiB, one thread, best of 20x8: seal suite 1 ${gib(op.seal1)} GiB/s, suite 2 ${gib(op.seal2)} GiB/s (${(op.seal1 / op.seal2).toFixed(2)}x); open suite 1 ${gib(op.open1)} GiB/s, suite 2 ${gib(op.open2)} GiB/s (${(op.open1 / op.open2).toFixed(2)}x)`,
  );
} finally {
  await closeWorkers();
  rmSync(dir, { recursive: true, force: true });
}
