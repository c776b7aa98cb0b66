/**
 * Data access for approval requests and their votes. Every state change is a conditional
 * UPDATE (`WHERE state IN (...)`), so of two replicas racing for the same transition exactly
 * one sees a changed row: that is what keeps an approved operation from executing twice.
 */
import type { ApprovalsTable, Database } from "../db/schema.js";
import { writeTransaction } from "../db/write-transaction.js";

export type ApprovalRow = ApprovalsTable;

export interface Vote {
  principal: string;
  vote: "approve" | "reject";
  at: string;
}

export class ApprovalRepo {
  constructor(private readonly d: Database) {}

  async insert(row: ApprovalRow, requesterVote: Vote): Promise<void> {
    await writeTransaction(this.d, async (trx) => {
      await trx.insertInto("approvals").values(row).execute();
      await trx
        .insertInto("approval_votes")
        .values({ approval_id: row.id, ...requesterVote })
        .execute();
    });
  }

  async get(id: string): Promise<ApprovalRow | null> {
    const r = await this.d.db
      .selectFrom("approvals")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    return r ? { ...r, required: Number(r.required), expires: Number(r.expires) } : null;
  }

  async list(state: string | undefined, limit: number): Promise<ApprovalRow[]> {
    let q = this.d.db.selectFrom("approvals").selectAll().orderBy("created", "desc").limit(limit);
    if (state) q = q.where("state", "=", state);
    return (await q.execute()).map((r) => ({
      ...r,
      required: Number(r.required),
      expires: Number(r.expires),
    }));
  }

  /** Records a principal's vote; false if that principal already voted on the request. */
  async vote(id: string, v: Vote): Promise<boolean> {
    const r = await this.d.db
      .insertInto("approval_votes")
      .values({ approval_id: id, ...v })
      .onConflict((oc) => oc.columns(["approval_id", "principal"]).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async votes(id: string): Promise<Vote[]> {
    const rows = await this.d.db
      .selectFrom("approval_votes")
      .select(["principal", "vote", "at"])
      .where("approval_id", "=", id)
      .orderBy("at")
      .execute();
    return rows as Vote[];
  }

  /**
   * Moves the request from one of `from` to `to` (only while unexpired at `aliveAt`, if given);
   * false when another request or replica changed it first.
   */
  async transition(
    id: string,
    from: readonly string[],
    to: string,
    updated: string,
    opts: { aliveAt?: number; outcome?: string; result?: string | null } = {},
  ): Promise<boolean> {
    let q = this.d.db
      .updateTable("approvals")
      .set({
        state: to,
        updated,
        ...(opts.outcome !== undefined ? { outcome: opts.outcome } : {}),
        ...(opts.result !== undefined ? { result: opts.result } : {}),
      })
      .where("id", "=", id)
      .where("state", "in", [...from]);
    if (opts.aliveAt !== undefined) q = q.where("expires", ">", opts.aliveAt);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Pending requests whose lifetime ended at `now` (Unix ms). */
  async due(now: number): Promise<ApprovalRow[]> {
    const rows = await this.d.db
      .selectFrom("approvals")
      .selectAll()
      .where("state", "=", "pending")
      .where("expires", "<=", now)
      .execute();
    return rows.map((r) => ({ ...r, required: Number(r.required), expires: Number(r.expires) }));
  }

  /** Hands out the one-time result once: the conditional clear decides who gets it. */
  async takeResult(id: string): Promise<string | null> {
    const r = await this.d.db
      .selectFrom("approvals")
      .select("result")
      .where("id", "=", id)
      .executeTakeFirst();
    if (!r?.result) return null;
    const u = await this.d.db
      .updateTable("approvals")
      .set({ result: null })
      .where("id", "=", id)
      .where("result", "=", r.result)
      .executeTakeFirst();
    return Number(u.numUpdatedRows) > 0 ? r.result : null;
  }
}
