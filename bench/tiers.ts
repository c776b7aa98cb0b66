/**
 * What each sensitivity tier costs, next to the default (untiered) seal, in the same run:
 *   node dist/bench/tiers.js [MIB] [ROUNDS]
 * Every tier uses the same payload suite (AES-256-GCM chunked, spec/FORMAT.md §4), so what a
 * tier changes is its recipients (what it allows) and the metadata in the header. For each row:
 * the recipients a compliant file of that tier gets here (restricted: a post-quantum public key,
 * the one allowed kind that needs no HSM, KMS or service), the header's used bytes (descriptor
 * + active slot body), the unwrap latency of the first stanza with its identity (median of
 * ROUNDS), and seal and open throughput of a MIB file through the engine (best of 3, page
 * cache warm). Prints a Markdown table for docs/BENCHMARKS.md.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeWorkers, inspectFile, openFile, sealFile } from "../src/engine/index.js";
import { withMetadata } from "../src/format/metadata.js";
import type { Identity, Recipient } from "../src/format/stanza.js";
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
  identity: Identity;
}
const rows: Row[] = [
  { tier: null, recipients: [kekR], identity: kekI },
  { tier: "public", recipients: [kekR], identity: kekI },
  { tier: "internal", recipients: [kekR], identity: kekI },
  { tier: "confidential", recipients: [kekR, xR], identity: parseX25519Identity(x.identity) },
  { tier: "restricted", recipients: [pqR], identity: parseXWingIdentity(pq.identity) },
];

const dir = mkdtempSync(join(tmpdir(), "tensorseal-bench-tiers-"));
const plain = join(dir, "plain.bin");
writeFileSync(plain, randomBytes(MIB << 20));
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`node ${process.version}, ${MIB} MiB, unwrap median of ${ROUNDS}`);
console.log("| tier | recipients | header bytes used | unwrap p50 | seal MiB/s | open MiB/s |");
console.log("| --- | --- | --- | --- | --- | --- |");
try {
  for (const row of rows) {
    const ids = row.recipients.map((r) => r.id);
    const tier = BUILTIN_TIERS.find((t) => t.name === row.tier);
    if (tier && kindViolations(tier, ids.map(recipientKind)).length > 0)
      throw new Error(`bench recipients break tier ${row.tier}`);
    const labels = withMetadata(
      { model: "bench" },
      row.tier ? { tier: row.tier, owner: "ml-platform@example.com", purpose: "bench" } : {},
    );
    const sealed = join(dir, `${row.tier ?? "default"}.tseal`);
    let sealBest = Infinity;
    for (let i = 0; i < 3; i++) {
      const t = process.hrtime.bigint();
      await sealFile(plain, sealed, { recipients: row.recipients, labels });
      sealBest = Math.min(sealBest, ms(t));
    }
    let openBest = Infinity;
    for (let i = 0; i < 3; i++) {
      const t = process.hrtime.bigint();
      await openFile(sealed, join(dir, "out.bin"), { identities: [row.identity] });
      openBest = Math.min(openBest, ms(t));
    }
    const h = await inspectFile(sealed);
    const used = h.descriptorBytes.length + h.bodyBytes.length;
    const stanza = h.stanzas.find((s) => s.type !== "kek") ?? h.stanzas[0]!;
    const unwrap: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t = process.hrtime.bigint();
      if (!(await row.identity.unwrap(stanza))) throw new Error("unwrap failed");
      unwrap.push(ms(t));
    }
    const rate = (t: number) => ((MIB * 1000) / t).toFixed(0);
    console.log(
      `| ${row.tier ?? "(none, default)"} | ${ids.map((i) => recipientKind(i)).join(" + ")} | ${used} | ${median(unwrap).toFixed(3)} ms | ${rate(sealBest)} | ${rate(openBest)} |`,
    );
  }
} finally {
  await closeWorkers();
  rmSync(dir, { recursive: true, force: true });
}
