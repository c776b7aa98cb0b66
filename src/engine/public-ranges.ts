/**
 * The range loop for public (integrity-only, suite 2) payloads, spec/FORMAT.md §2.5. The fast
 * paths of run-ranges.ts (native batches, worker threads) run AES-GCM encryption; a suite-2
 * chunk is plaintext plus a GMAC tag instead, so these files take this plain loop, chunk by
 * chunk on the main thread, through format/chunked.ts (whose keys know their suite). Public
 * files are configs, tokenizers and model cards: small, so one thread is enough (the cost is
 * measured by bench:tiers). Opening writes a chunk only after its tag checked, as the fast path.
 */
import { openChunk, sealChunk } from "../format/chunked.js";
import { fail } from "../format/errors.js";
import { PayloadGeometry } from "../format/geometry.js";
import { readExactSync, writeAllSync } from "./fsutil.js";
import { type RangeRun, runRanges } from "./run-ranges.js";

/** Keys as the engine passes them around (ChunkKeys from format/chunked.ts carry the flag). */
interface MaybeIntegrityKeys {
  readonly integrityOnly?: boolean;
}

/** runRanges, or the public loop when the keys are a suite-2 file's. */
export function runRangesFor(run: RangeRun): Promise<void> {
  return (run.keys as MaybeIntegrityKeys).integrityOnly ? runPublicRanges(run) : runRanges(run);
}

export async function runPublicRanges(run: RangeRun): Promise<void> {
  if (run.mode !== "seal" && run.mode !== "open" && run.mode !== "verify") {
    fail("E_USAGE", `a public file cannot be processed in ${run.mode} mode`);
  }
  const keys = run.keys as Parameters<typeof openChunk>[0];
  const g = new PayloadGeometry(run.chunkSize);
  const chunks = g.chunkCount(run.plaintextLength);
  const sealing = run.mode === "seal";
  const memory = run.sink.kind === "memory" ? Buffer.from(run.sink.buffer as ArrayBuffer) : null;
  if (sealing && memory) fail("E_USAGE", "sealing writes to a file or nowhere");
  for (let k = 0; k < chunks; k++) {
    const n = g.chunkPlaintextLength(k, run.plaintextLength);
    const sealedAt = run.chunksOffset + k * g.sealedChunkSize;
    if (sealing) {
      const plain = Buffer.allocUnsafe(n);
      readExactSync(run.inFd, plain, k * run.chunkSize);
      const out = sealChunk(keys, k, plain);
      if (run.sink.kind === "fd") writeAllSync(run.sink.fd, out, sealedAt);
    } else {
      const sealed = Buffer.allocUnsafe(n + 16);
      readExactSync(run.inFd, sealed, sealedAt);
      const plain = openChunk(keys, k, sealed); // throws before anything of it is written
      if (run.sink.kind === "fd") writeAllSync(run.sink.fd, plain, k * run.chunkSize);
      else if (memory) plain.copy(memory, k * run.chunkSize);
    }
    run.progress.add(n);
    // Let timers (progress, signals) run between chunks of a larger file.
    if (k % 64 === 63) await new Promise<void>((r) => setImmediate(r));
  }
}
