/**
 * Containment of a compromised principal (incident response, docs/INCIDENTS.md): block it on
 * every replica, then take away its credentials for good where the service issued them —
 * revoke its static token (`token:ID`) and every client certificate it is known to have used
 * (the fingerprints anomaly detection recorded for it, plus any the responder names). A JWT
 * principal's tokens come from the identity provider: the block holds it until they expire
 * and the provider disables the subject (reported as `jwt: blocked only`).
 *
 * Order matters and fails closed: the block is written first (it stops the principal within
 * the block cache window even when a later revocation fails); a revocation that fails throws,
 * so the caller sees the containment as failed and reruns it (each part is idempotent).
 */
import type { BlockList } from "../anomaly/blocks.js";
import type { Database } from "../db/schema.js";
import { normalizeFingerprint, type RevokedCertRepo } from "./revoked-certs.js";
import type { TokenRepo } from "./tokens.js";

export interface ContainOutcome {
  readonly principal: string;
  readonly blocked: true;
  /** `token:ID` principals: whether the token was revoked now (false: it already was / unknown). */
  readonly tokenRevoked?: boolean;
  /** Fingerprints revoked now or already revoked, sorted. */
  readonly certsRevoked: string[];
  /** What the service could not take away itself (a JWT's issuer). */
  readonly note?: string;
}

export class PrincipalContainment {
  constructor(
    private readonly d: Database,
    private readonly blocks: BlockList,
    private readonly tokens: TokenRepo,
    private readonly certs: RevokedCertRepo,
  ) {}

  /** The certificate fingerprints this principal presented (as anomaly detection saw them). */
  async certsOf(principal: string): Promise<string[]> {
    const rows = await this.d.db
      .selectFrom("anomaly_clients")
      .select("cert")
      .distinct()
      .where("principal", "=", principal)
      .where("cert", "!=", "")
      .execute();
    return rows.map((r) => r.cert).sort();
  }

  async contain(principal: string, reason: string, fingerprints: readonly string[] = []) {
    await this.blocks.block(principal, reason);
    let tokenRevoked: boolean | undefined;
    const m = /^token:([0-9a-f]{16})$/.exec(principal);
    if (m) tokenRevoked = await this.tokens.revoke(m[1]!);
    const fps = new Set<string>(await this.certsOf(principal));
    for (const f of fingerprints) {
      const fp = normalizeFingerprint(f);
      if (fp) fps.add(fp);
    }
    for (const fp of fps) await this.certs.revoke(fp, reason);
    const out: ContainOutcome = {
      principal,
      blocked: true,
      ...(tokenRevoked !== undefined ? { tokenRevoked } : {}),
      certsRevoked: [...fps].sort(),
      ...(principal.startsWith("jwt:")
        ? { note: "jwt: blocked only (its issuer must disable the subject)" }
        : {}),
    };
    return out;
  }
}
