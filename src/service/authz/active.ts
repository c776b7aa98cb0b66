/**
 * The active Cedar policy set. Precedence: the newest version in the `policies` table (approved
 * over the API under dual control) wins; while the table is empty the bootstrap set applies
 * (`serve --policy DIR`, else the built-in default), so `--policy` only seeds a fresh service.
 *
 * Replicas pick up a new version within `ttlMs` (default 2 s): the table's newest version is
 * re-read at most that often, and only a changed version is loaded and validated. The swap is
 * one reference assignment: a request keeps the Authorizer it started with (`active()` is
 * called once per decision), so nothing in flight sees half of two sets.
 */
import type { Database } from "../db/schema.js";
import { Authorizer } from "./cedar.js";

export interface ActivePolicies {
  readonly authorizer: Authorizer;
  /** 0 = the bootstrap set (the table is empty). */
  readonly version: number;
}

export const POLICY_CACHE_MS = 2000;

export class PolicyStore {
  private current: ActivePolicies;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<ActivePolicies> | null = null;

  constructor(
    private readonly d: Database,
    private readonly bootstrap: Authorizer,
    private readonly ttlMs = POLICY_CACHE_MS,
  ) {
    this.current = { authorizer: bootstrap, version: 0 };
  }

  /** The set to decide with; re-checks the database at most every `ttlMs`. */
  async active(): Promise<ActivePolicies> {
    if (Date.now() - this.checkedAt < this.ttlMs) return this.current;
    // One database read however many requests arrive while it runs.
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /** Forget the cache (after this replica stored a new version). */
  invalidate(): void {
    this.checkedAt = Number.NEGATIVE_INFINITY;
  }

  /** The newest stored version, read now (0 when none). */
  async latestVersion(): Promise<number> {
    const r = await this.d.db
      .selectFrom("policies")
      .select((eb) => eb.fn.max("version").as("v"))
      .executeTakeFirst();
    return r?.v === null || r?.v === undefined ? 0 : Number(r.v);
  }

  /**
   * Stores `authorizer`'s policies as version `base + 1`. The primary key makes two concurrent
   * installs on the same base fail but one (false = someone else changed the set first).
   */
  async install(authorizer: Authorizer, base: number, approvalId: string): Promise<boolean> {
    try {
      await this.d.db
        .insertInto("policies")
        .values({
          version: base + 1,
          policies: JSON.stringify(authorizer.policies),
          digest: authorizer.digest,
          approval_id: approvalId,
          created: new Date().toISOString(),
        })
        .execute();
    } catch (e) {
      if ((await this.latestVersion()) !== base) return false;
      throw e;
    }
    this.invalidate();
    return true;
  }

  private async refresh(): Promise<ActivePolicies> {
    const version = await this.latestVersion();
    if (version !== this.current.version) {
      if (version === 0) {
        this.current = { authorizer: this.bootstrap, version: 0 };
      } else {
        const row = await this.d.db
          .selectFrom("policies")
          .select("policies")
          .where("version", "=", version)
          .executeTakeFirstOrThrow();
        // A stored set that no longer validates throws: every request fails (closed) until fixed.
        const authorizer = Authorizer.fromPolicies(
          JSON.parse(row.policies) as Record<string, string>,
          `policy version ${version}`,
        );
        this.current = { authorizer, version };
      }
    }
    this.checkedAt = Date.now();
    return this.current;
  }
}
