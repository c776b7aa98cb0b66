/**
 * What only the key service can judge of itself — its dual control settings and whether its
 * checkpoints are anchored (start-time options no client can see), and whether its root's shares
 * were test-recovered (its audit log, check-service-shares.ts) — relayed from its own
 * `GET /v1/overview` findings to `doctor --server`. Needs a token that may read the findings
 * (audit:read: admin or audit); without one the checks are left out silently, as the audit
 * chain check does (the keys check already says which token doctor wants).
 */
import { isTensorSealError } from "../format/errors.js";
import { type Finding, type RuleId, SEVERITIES } from "./findings.js";
import type { ServiceAccess } from "./service-access.js";

/** The service's findings that doctor cannot judge from outside. */
const RELAYED: readonly RuleId[] = [
  "service.dual-control-off",
  "service.audit-anchor-missing",
  // The service root's test recoveries are in its audit log, judged by the service.
  "root.shares-untested",
];

export async function checkServiceSettings(access: ServiceAccess): Promise<Finding[]> {
  const { client } = access;
  if (!client) return [];
  try {
    const r = await client.get("/v1/overview");
    if (r.status !== 200 || !Array.isArray(r.body.findings)) return [];
    return (r.body.findings as Finding[])
      .filter((f) => RELAYED.includes(f.id) && SEVERITIES.includes(f.severity))
      .map((f) => ({
        id: f.id,
        severity: f.severity,
        message: String(f.message),
        evidence: String(f.evidence),
        fix: String(f.fix),
      }));
  } catch (e) {
    // Unreachable: service.unreachable (check-tls.ts) already reports it.
    if (isTensorSealError(e) || e instanceof Error) return [];
    throw e;
  }
}
