/**
 * service.audit-anchor-missing: the key service signs checkpoints of its audit chain but
 * publishes them nowhere outside its own database (`serve --checkpoint-anchor FILE|URL`), so
 * whoever can write the database can roll the log back to an earlier signed checkpoint and
 * nobody can tell. Judged from the service's own settings, so only the service reports it
 * (GET /v1/overview `findings`; `doctor --server` relays it).
 */
import type { Finding } from "./findings.js";

export function judgeAnchor(anchored: boolean, where: string): Finding[] {
  if (anchored) return [];
  return [
    {
      id: "service.audit-anchor-missing",
      severity: "warning",
      message: "the audit chain's signed checkpoints are kept only in the service's own database",
      evidence: `${where}: serve runs without --checkpoint-anchor`,
      fix: "tensorseal serve --checkpoint-anchor FILE (an append-only file outside the database) or --checkpoint-anchor-url URL (docs/SERVICE.md, checkpoint anchoring); audit verify --anchor FILE then checks the log against it",
    },
  ];
}
