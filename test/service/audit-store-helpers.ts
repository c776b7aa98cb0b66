/** Shared by audit-store.test.ts and its child writer: the batches each writer appends. */
import type { AuditRecord } from "../../src/service/audit/chain.js";
import type { AuditStore } from "../../src/service/index.js";

export function record(id: string): AuditRecord {
  return {
    action: "test.append",
    outcome: "allowed",
    status: 200,
    principal: "tester",
    source: "127.0.0.1",
    requestId: id,
  };
}

/** The request ids `appendBatches(store, name, n)` writes, in order. */
export function batchIds(name: string, n: number): string[][] {
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: 1 + (i % 7) }, (_, j) => `${name}-${i}-${j}`),
  );
}

/** One batch after another (each awaited), as one replica's group commits. */
export async function appendBatches(store: AuditStore, name: string, n: number): Promise<void> {
  for (const batch of batchIds(name, n)) {
    const out = await store.append(batch.map(record));
    if (out.length !== batch.length) throw new Error("short append");
  }
}
