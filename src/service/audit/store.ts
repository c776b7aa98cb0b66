/**
 * Appends to the audit chain in one transaction per batch. On PostgreSQL a transaction-scoped
 * advisory lock serialises appenders across replicas, so the chain stays linear (each batch
 * reads the head under the lock); on SQLite the single connection serialises them.
 * Checkpoints are signed every `every` entries inside the append, and on time
 * (`checkpointIfDue`) under the same lock, so replicas never sign two checkpoints for one seq.
 *
 * The head (seq, hash) is read from the database inside every batch's transaction and never
 * cached in memory. That is what keeps the chain whole across a lost connection: when COMMIT's
 * outcome is unknown (PostgreSQL restarted mid-commit) the batch either landed or did not, and
 * the next batch continues from whichever head is really stored — no fork, no reused seq.
 */

import type { KeyObject } from "node:crypto";
import { type Kysely, sql, type Transaction } from "kysely";
import type { Database, Schema } from "../db/schema.js";
import {
  type AuditRecord,
  type ChainedEntry,
  chainEntry,
  GENESIS,
  type SignedCheckpoint,
  signCheckpoint,
} from "./chain.js";

/** An arbitrary constant naming the lock (also scoped by schema through search_path users). */
const AUDIT_LOCK = 0x7453_6175;

export interface CheckpointPolicy {
  readonly every: number;
  readonly server: string;
  readonly key: KeyObject;
  /** Told of every checkpoint this process signed, after its transaction committed. */
  readonly onSigned?: (cps: SignedCheckpoint[]) => void;
}

export class AuditStore {
  constructor(
    private readonly d: Database,
    private readonly cp: CheckpointPolicy,
  ) {}

  async append(records: AuditRecord[]): Promise<ChainedEntry[]> {
    const { out, checkpoints } = await this.d.db.transaction().execute(async (trx) => {
      await this.lock(trx);
      const head = await readHead(trx);
      let seq = head ? Number(head.seq) : 0;
      let prev = head?.hash ?? GENESIS;
      const ts = new Date().toISOString();
      const out: ChainedEntry[] = [];
      const checkpoints: SignedCheckpoint[] = [];
      for (const r of records) {
        const e = chainEntry(++seq, prev, ts, r);
        out.push(e);
        prev = e.hash;
        if (seq % this.cp.every === 0) checkpoints.push(this.sign(seq, e.hash, ts));
      }
      await trx
        .insertInto("audit")
        .values(out.map((e) => ({ seq: e.seq, entry: e.text, hash: e.hash })))
        .execute();
      if (checkpoints.length > 0) await trx.insertInto("checkpoints").values(checkpoints).execute();
      return { out, checkpoints };
    });
    if (checkpoints.length > 0) this.cp.onSigned?.(checkpoints);
    return out;
  }

  /**
   * Signs the current head if entries were appended since the newest checkpoint and none was
   * signed in the last `intervalMs` (by any replica). Returns the new checkpoint, or null.
   */
  async checkpointIfDue(nowMs: number, intervalMs: number): Promise<SignedCheckpoint | null> {
    // A lock-free look first: most ticks find nothing to do and must not queue behind appends.
    if (!due(await readHead(this.d.db), await newestCheckpoint(this.d.db), nowMs, intervalMs))
      return null;
    const cp = await this.d.db.transaction().execute(async (trx) => {
      await this.lock(trx);
      const head = await readHead(trx);
      if (!head || !due(head, await newestCheckpoint(trx), nowMs, intervalMs)) return null;
      const cp = this.sign(Number(head.seq), head.hash, new Date(nowMs).toISOString());
      // Under the lock no other replica can sign this seq; the conflict clause keeps a second
      // writer without the lock (two processes on one SQLite file) from failing or duplicating.
      const r = await trx
        .insertInto("checkpoints")
        .values(cp)
        .onConflict((oc) => oc.column("seq").doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1 ? cp : null;
    });
    if (cp) this.cp.onSigned?.([cp]);
    return cp;
  }

  private sign(seq: number, hash: string, ts: string): SignedCheckpoint {
    return { seq, hash, signature: signCheckpoint(this.cp.key, this.cp.server, seq, hash), ts };
  }

  private async lock(trx: Transaction<Schema>): Promise<void> {
    if (this.d.dialect === "postgres") {
      await sql`select pg_advisory_xact_lock(${AUDIT_LOCK})`.execute(trx);
    }
  }
}

function readHead(db: Kysely<Schema>) {
  return db
    .selectFrom("audit")
    .select(["seq", "hash"])
    .orderBy("seq", "desc")
    .limit(1)
    .executeTakeFirst();
}

/** The checkpoint with the highest seq (the newest one signed), or undefined. */
export function newestCheckpoint(db: Kysely<Schema>) {
  return db
    .selectFrom("checkpoints")
    .selectAll()
    .orderBy("seq", "desc")
    .limit(1)
    .executeTakeFirst();
}

function due(
  head: { seq: number } | undefined,
  last: { seq: number; ts: string } | undefined,
  nowMs: number,
  intervalMs: number,
): boolean {
  if (!head) return false;
  if (!last) return true;
  return Number(head.seq) > Number(last.seq) && Date.parse(last.ts) <= nowMs - intervalMs;
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

/** Every stored entry after `from` in sequence order, read a page at a time. */
export async function* allAuditRows(d: Database, page = 2000, from = 0) {
  for (let since = from; ; ) {
    const rows = await readAuditPage(d, since, page);
    if (rows.length === 0) return;
    for (const row of rows) {
      since = Number(row.seq);
      yield row;
    }
  }
}
