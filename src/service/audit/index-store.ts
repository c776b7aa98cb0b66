/**
 * Reads and writes the audit index (index-fields.ts): the filtered, paged query behind
 * `GET /v1/audit` and `audit query`, and the one-time indexing of entries written before the
 * index existed (migration 0008).
 */
import type { Kysely } from "kysely";
import type { Database, Schema } from "../db/schema.js";
import { indexColumns, indexRefs } from "./index-fields.js";

export interface AuditFilter {
  readonly key?: string;
  readonly artifact?: string;
  readonly principal?: string;
  readonly action?: string;
  readonly outcome?: string;
  /** ISO 8601 times: entries with since <= ts < until. */
  readonly from?: string;
  readonly until?: string;
}

/** Stored entries after `since` that match `f`, in sequence order (the canonical text). */
export function queryAuditPage(d: Database, f: AuditFilter, since: number, limit: number) {
  let q = d.db.selectFrom("audit").select(["seq", "entry", "hash"]).where("seq", ">", since);
  if (f.principal !== undefined) q = q.where("principal", "=", f.principal);
  if (f.action !== undefined) q = q.where("action", "=", f.action);
  if (f.outcome !== undefined) q = q.where("outcome", "=", f.outcome);
  if (f.from !== undefined) q = q.where("ts", ">=", f.from);
  if (f.until !== undefined) q = q.where("ts", "<", f.until);
  for (const [kind, ref] of [
    ["key", f.key],
    ["artifact", f.artifact],
  ] as const) {
    if (ref === undefined) continue;
    q = q.where("seq", "in", (sub) =>
      sub
        .selectFrom("audit_refs")
        .select("seq")
        .where("kind", "=", kind)
        .where("ref", "=", ref)
        .where("seq", ">", since),
    );
  }
  return q.orderBy("seq").limit(limit).execute();
}

/** Indexes the entries that have no index fields yet, a page at a time. */
export async function backfillAuditIndex(db: Kysely<Schema>, page = 1000): Promise<void> {
  for (;;) {
    const rows = await db
      .selectFrom("audit")
      .select(["seq", "entry"])
      .where("action", "is", null)
      .orderBy("seq")
      .limit(page)
      .execute();
    if (rows.length === 0) return;
    await db.transaction().execute(async (trx) => {
      for (const row of rows) {
        const seq = Number(row.seq);
        const entry = JSON.parse(row.entry) as Record<string, unknown>;
        await trx.updateTable("audit").set(indexColumns(entry)).where("seq", "=", seq).execute();
        const refs = indexRefs(seq, entry);
        if (refs.length > 0)
          await trx
            .insertInto("audit_refs")
            .values(refs)
            .onConflict((oc) => oc.doNothing())
            .execute();
      }
    });
  }
}
