/**
 * Revocation of client certificates by fingerprint (SHA-256 of the DER, 64 hex digits), kept
 * in the database so every replica honours it. Complements the CRL given to TLS
 * (`--client-crl`): no CA is needed to revoke, and it takes effect without a restart. A
 * lookup that found the certificate not revoked is cached for `cacheMs` (default 2 s, like
 * token revocation), so a revocation reaches every replica within that window.
 */
import type { Database } from "../db/schema.js";

/** Lowercase hex without separators; accepts `AB:CD:...` (openssl, Node) too. Null if malformed. */
export function normalizeFingerprint(s: string): string | null {
  const hex = s.replace(/:/g, "").toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : null;
}

export interface RevokedCert {
  readonly fingerprint: string;
  readonly reason: string;
  readonly revoked: string;
}

export class RevokedCertRepo {
  private readonly notRevoked = new Map<string, number>();

  constructor(
    private readonly d: Database,
    private readonly cacheMs = 2000,
  ) {}

  /** False when it was already revoked. */
  async revoke(fingerprint: string, reason = ""): Promise<boolean> {
    const fp = normalizeFingerprint(fingerprint);
    if (!fp)
      throw new Error("a fingerprint is the SHA-256 of the certificate's DER: 64 hex digits");
    const r = await this.d.db
      .insertInto("revoked_certs")
      .values({ fingerprint: fp, reason, revoked: new Date().toISOString() })
      .onConflict((oc) => oc.column("fingerprint").doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  async list(): Promise<RevokedCert[]> {
    return this.d.db
      .selectFrom("revoked_certs")
      .select(["fingerprint", "reason", "revoked"])
      .orderBy("revoked")
      .execute();
  }

  /** `fp` is normalised (lowercase hex). A database error propagates: the caller denies. */
  async isRevoked(fp: string): Promise<boolean> {
    const at = this.notRevoked.get(fp);
    if (at !== undefined && Date.now() - at < this.cacheMs) return false;
    const row = await this.d.db
      .selectFrom("revoked_certs")
      .select("fingerprint")
      .where("fingerprint", "=", fp)
      .executeTakeFirst();
    if (row) {
      this.notRevoked.delete(fp);
      return true;
    }
    if (this.notRevoked.size > 10_000) this.notRevoked.clear();
    this.notRevoked.set(fp, Date.now());
    return false;
  }
}
