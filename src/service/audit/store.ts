/**
 * Appends to the audit chain in one transaction per batch. On PostgreSQL a transaction-scoped
 * advisory lock serialises appenders across replicas, so the chain stays linear (each batch
 * reads the head under the lock); on SQLite the single connection serialises them.
 * Checkpoints are signed every `every` entries inside the append, and on time
 * (`checkpointIfDue`) under the same lock, so replicas never sign two checkpoints for one seq.
 *
 * On PostgreSQL a batch first tries the fast path: the head this process committed last is
 * remembered, and the batch goes in as one autocommitted INSERT (one round trip instead of
 * begin, lock, head read, insert, commit). The primary key on `seq` keeps the chain linear: if
 * another replica appended in between, the INSERT at an already taken seq fails as a whole
 * (unique violation, nothing written) and the batch is retried on the locked path, which reads
 * the head from the database. Any other error forgets the remembered head, so when COMMIT's
 * outcome is unknown (PostgreSQL restarted mid-commit) the next batch continues from whichever
 * head is really stored — no fork, no reused seq.
 */

import type { KeyObject } from "node:crypto";
import { type Kysely, sql } from "kysely";
import type { AuditTable, Database, Schema } from "../db/schema.js";
import { writeTransaction } from "../db/write-transaction.js";
import {
  type AuditRecord,
  type ChainedEntry,
  chainEntry,
  GENESIS,
  type SignedCheckpoint,
  signCheckpoint,
} from "./chain.js";
import { type AuditRef, indexColumns, indexRefs } from "./index-fields.js";

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

  /** Postgres only: the head this process committed last (null: read it under the lock). */
  private head: { seq: number; hash: string } | null = null;

  async append(records: AuditRecord[]): Promise<ChainedEntry[]> {
    const known = this.head;
    this.head = null;
    let r: Batch | null = null;
    if (known) r = await this.appendAfter(known, records);
    for (let attempt = 0; r === null; attempt++) {
      try {
        r = await writeTransaction(this.d, async (trx) => {
          await this.lock(trx);
          const head = await readHead(trx);
          const b = this.chain(head ? { seq: Number(head.seq), hash: head.hash } : null, records);
          await insertBatch(trx, b);
          return b;
        });
      } catch (e) {
        // Under the lock nobody else appends; a conflict means a writer that ignores the lock
        // (an older replica) took our seq. Nothing was written: read the head again.
        if (!isUniqueViolation(e) || attempt >= 4) throw e;
      }
    }
    if (this.d.dialect === "postgres") {
      const last = r.out[r.out.length - 1]!;
      this.head = { seq: last.seq, hash: last.hash };
    }
    if (r.checkpoints.length > 0) this.cp.onSigned?.(r.checkpoints);
    return r.out;
  }

  /**
   * The fast path: one autocommitted statement that takes the advisory lock (held until its
   * implicit commit, so it never races a locked-path writer) and inserts the batch. Null when
   * another replica took the next seq meanwhile (nothing written) or the batch is due a
   * checkpoint (rare: the locked path writes both).
   */
  private async appendAfter(
    head: { seq: number; hash: string },
    records: AuditRecord[],
  ): Promise<Batch | null> {
    const b = this.chain(head, records);
    if (b.checkpoints.length > 0) return null;
    const rows = b.rows.map(
      (r) =>
        sql`(${r.seq}::bigint, ${r.entry}, ${r.hash}, ${r.ts}, ${r.action}, ${r.outcome}, ${r.principal})`,
    );
    // One statement, so the entries and their index land together or not at all. A
    // data-modifying WITH runs whether or not the outer statement reads it.
    const refs =
      b.refs.length > 0
        ? sql`insert into audit_refs (seq, kind, ref)
            select v.seq, v.kind, v.ref from a, (values ${sql.join(
              b.refs.map((r) => sql`(${r.seq}::bigint, ${r.kind}, ${r.ref})`),
            )}) as v (seq, kind, ref) where a.seq = v.seq`
        : sql`select 1`;
    try {
      await sql`with l as (select pg_advisory_xact_lock(${AUDIT_LOCK})),
        a as (insert into audit (seq, entry, hash, ts, action, outcome, principal)
          select v.* from l, (values ${sql.join(rows)})
            as v (seq, entry, hash, ts, action, outcome, principal)
          returning seq)
        ${refs}`.execute(this.d.db);
      return b;
    } catch (e) {
      if (isUniqueViolation(e)) return null;
      throw e;
    }
  }

  /** The records as chained entries after `head`, and the checkpoints they are due. */
  private chain(head: { seq: number; hash: string } | null, records: AuditRecord[]): Batch {
    let seq = head?.seq ?? 0;
    let prev = head?.hash ?? GENESIS;
    const ts = new Date().toISOString();
    const out: ChainedEntry[] = [];
    const rows: AuditRow[] = [];
    const refs: AuditRef[] = [];
    const checkpoints: SignedCheckpoint[] = [];
    for (const r of records) {
      const e = chainEntry(++seq, prev, ts, r);
      out.push(e);
      rows.push({ seq, entry: e.text, hash: e.hash, ...indexColumns({ ts, ...r }) });
      refs.push(...indexRefs(seq, r as unknown as Record<string, unknown>));
      prev = e.hash;
      if (seq % this.cp.every === 0) checkpoints.push(this.sign(seq, e.hash, ts));
    }
    return { out, rows, refs, checkpoints };
  }

  /**
   * Signs the current head if entries were appended since the newest checkpoint and none was
   * signed in the last `intervalMs` (by any replica; 0: whenever the head is unsigned, as on a
   * clean shutdown). Returns the new checkpoint, or null.
   */
  async checkpointIfDue(nowMs: number, intervalMs: number): Promise<SignedCheckpoint | null> {
    // A lock-free look first: most ticks find nothing to do and must not queue behind appends.
    if (!due(await readHead(this.d.db), await newestCheckpoint(this.d.db), nowMs, intervalMs))
      return null;
    const cp = await writeTransaction(this.d, async (trx) => {
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

  private async lock(trx: Kysely<Schema>): Promise<void> {
    if (this.d.dialect === "postgres") {
      await sql`select pg_advisory_xact_lock(${AUDIT_LOCK})`.execute(trx);
    }
  }
}

type AuditRow = AuditTable;

interface Batch {
  readonly out: ChainedEntry[];
  /** The rows to store: each entry with its index columns, and the keys/artifacts it names. */
  readonly rows: AuditRow[];
  readonly refs: AuditRef[];
  readonly checkpoints: SignedCheckpoint[];
}

async function insertBatch(db: Kysely<Schema>, b: Batch): Promise<void> {
  await db.insertInto("audit").values(b.rows).execute();
  if (b.refs.length > 0) await db.insertInto("audit_refs").values(b.refs).execute();
  if (b.checkpoints.length > 0) await db.insertInto("checkpoints").values(b.checkpoints).execute();
}

/** PostgreSQL's unique_violation (SQLite never reaches the fast path). */
function isUniqueViolation(e: unknown): boolean {
  return (e as { code?: unknown })?.code === "23505";
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
  if (Number(head.seq) <= Number(last.seq)) return false;
  return intervalMs <= 0 || Date.parse(last.ts) <= nowMs - intervalMs;
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
