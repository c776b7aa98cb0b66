/**
 * Attestation challenge nonces: 32 random bytes (base64url), stored with an expiry so every
 * replica sees them; consumed by one `DELETE ... WHERE nonce = ? AND expires > now` — the
 * first presentation wins, a replay or a stale nonce deletes nothing and is refused.
 */
import { randomBytes } from "node:crypto";
import type { Database } from "../db/schema.js";

export const DEFAULT_NONCE_TTL_MS = 60_000;

export class NonceStore {
  private lastSweep = 0;

  constructor(
    private readonly d: Database,
    readonly ttlMs = DEFAULT_NONCE_TTL_MS,
  ) {}

  async issue(): Promise<{ nonce: string; expires: number }> {
    const now = Date.now();
    if (now - this.lastSweep > 10_000) {
      this.lastSweep = now;
      await this.d.db.deleteFrom("nonces").where("expires", "<=", now).execute();
    }
    const nonce = randomBytes(32).toString("base64url");
    const expires = now + this.ttlMs;
    await this.d.db.insertInto("nonces").values({ nonce, expires }).execute();
    return { nonce, expires };
  }

  /** True exactly once for a nonce issued here and not yet expired. */
  async consume(nonce: string): Promise<boolean> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(nonce)) return false;
    const r = await this.d.db
      .deleteFrom("nonces")
      .where("nonce", "=", nonce)
      .where("expires", ">", Date.now())
      .executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  }
}
