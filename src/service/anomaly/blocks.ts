/**
 * Principals blocked by anomaly auto-block, in the database so every replica refuses them.
 * The hot path reads an in-memory copy of the whole (small) blocked set, reloaded at most every
 * `ttlMs`: one query per replica per window instead of one per request. A block or unblock made
 * on this replica applies here at once; on other replicas within `ttlMs`.
 */
import type { Database } from "../db/schema.js";

export interface BlockedPrincipal {
  readonly principal: string;
  readonly since: string;
  readonly reason: string;
}

export class BlockList {
  private set = new Set<string>();
  private loadedAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | null = null;
  /** Bumped by every local block/unblock: a reload that raced one is discarded. */
  private gen = 0;

  constructor(
    private readonly d: Database,
    private readonly now: () => number,
    private readonly ttlMs: number,
  ) {}

  /** Whether the principal is blocked; a reload that fails throws (the caller refuses: fail closed). */
  async isBlocked(principal: string): Promise<boolean> {
    const t = this.now();
    if (t - this.loadedAt >= this.ttlMs || t < this.loadedAt) await this.reload(t);
    return this.set.has(principal);
  }

  async block(principal: string, reason: string): Promise<void> {
    this.set.add(principal);
    this.gen++;
    await this.d.db
      .insertInto("anomaly_blocks")
      .values({ principal, since: new Date(this.now()).toISOString(), reason })
      .onConflict((oc) => oc.column("principal").doNothing())
      .execute();
  }

  /** Whether the database holds a block for the principal (no cache). */
  async stored(principal: string): Promise<boolean> {
    const r = await this.d.db
      .selectFrom("anomaly_blocks")
      .select("principal")
      .where("principal", "=", principal)
      .executeTakeFirst();
    return r !== undefined;
  }

  /** True when the principal was blocked (in the database). */
  async unblock(principal: string): Promise<boolean> {
    const r = await this.d.db
      .deleteFrom("anomaly_blocks")
      .where("principal", "=", principal)
      .executeTakeFirst();
    this.set.delete(principal);
    this.gen++;
    return Number(r.numDeletedRows) > 0;
  }

  async list(): Promise<BlockedPrincipal[]> {
    return this.d.db
      .selectFrom("anomaly_blocks")
      .select(["principal", "since", "reason"])
      .orderBy("since")
      .orderBy("principal")
      .execute();
  }

  private reload(t: number): Promise<void> {
    // One query at a time: concurrent requests wait for the same reload.
    const gen = this.gen;
    this.loading ??= this.d.db
      .selectFrom("anomaly_blocks")
      .select("principal")
      .execute()
      .then((rows) => {
        if (gen !== this.gen) return; // the next call reloads
        this.set = new Set(rows.map((r) => r.principal));
        this.loadedAt = t;
      })
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }
}
