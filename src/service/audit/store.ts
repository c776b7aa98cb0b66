/**
 * Appends to the audit chain in one transaction per batch. On PostgreSQL a transaction-scoped
 * advisory lock serialises appenders across replicas, so the chain stays linear (each batch
 * reads the head under the lock); on SQLite the single connection serialises them.
 *
 * The head (seq, hash) is read from the database inside every batch's transaction and never
 * cached in memory. That is what keeps the chain whole across a lost connection: when COMMIT's
 * outcome is unknown (PostgreSQL restarted mid-commit) the batch either landed or did not, and
 * the next batch continues from whichever head is really stored — no fork, no reused seq.
 */

import type { KeyObject } from "node:crypto";
import { sql } from "kysely";
import type { Database } from "../db/schema.js";
import {
  type AuditRecord,
  type ChainedEntry,
  chainEntry,
  GENESIS,
  signCheckpoint,
} from "./chain.js";

/** An arbitrary constant naming the lock (also scoped by schema through search_path users). */
const AUDIT_LOCK = 0x7453_6175;

export interface CheckpointPolicy {
  readonly every: number;
  readonly server: string;
  readonly key: KeyObject;
}

export class AuditStore {
  constructor(
    private readonly d: Database,
    private readonly cp: CheckpointPolicy,
  ) {}

  async append(records: AuditRecord[]): Promise<ChainedEntry[]> {
    return this.d.db.transaction().execute(async (trx) => {
      if (this.d.dialect === "postgres") {
        await sql`select pg_advisory_xact_lock(${AUDIT_LOCK})`.execute(trx);
      }
      const head = await trx
        .selectFrom("audit")
        .select(["seq", "hash"])
        .orderBy("seq", "desc")
        .limit(1)
        .executeTakeFirst();
      let seq = head ? Number(head.seq) : 0;
      let prev = head?.hash ?? GENESIS;
      const ts = new Date().toISOString();
      const out: ChainedEntry[] = [];
      const checkpoints: { seq: number; hash: string; signature: string; ts: string }[] = [];
      for (const r of records) {
        const e = chainEntry(++seq, prev, ts, r);
        out.push(e);
        prev = e.hash;
        if (seq % this.cp.every === 0) {
          checkpoints.push({
            seq,
            hash: e.hash,
            signature: signCheckpoint(this.cp.key, this.cp.server, seq, e.hash),
            ts,
          });
        }
      }
      await trx
        .insertInto("audit")
        .values(out.map((e) => ({ seq: e.seq, entry: e.text, hash: e.hash })))
        .execute();
      if (checkpoints.length > 0) await trx.insertInto("checkpoints").values(checkpoints).execute();
      return out;
    });
  }
}

/** Stored entries after `since`, in sequence order: the canonical text the chain hashes. */
export function readAuditPage(d: Database, since: number, limit: number) {
  return d.db
    .selectFrom("audit")
    .select(["seq", "entry", "hash"])
    .where("seq", ">", since)
    .orderBy("seq")
    .limit(limit)
    .execute();
}

/** Every stored entry in sequence order, read a page at a time. */
export async function* allAuditRows(d: Database, page = 2000) {
  for (let since = 0; ; ) {
    const rows = await readAuditPage(d, since, page);
    if (rows.length === 0) return;
    for (const row of rows) {
      since = Number(row.seq);
      yield row;
    }
  }
}
