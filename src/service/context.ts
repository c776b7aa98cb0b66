/** What the route plugins share: the services they call (no database access in handlers). */

import type { FastifyRequest } from "fastify";
import type { StanzaArtifacts } from "./artifacts/by-stanza.js";
import type { ArtifactRepo } from "./artifacts/repo.js";
import type { AttestationVerifier } from "./attest/evidence.js";
import type { NonceStore } from "./attest/nonces.js";
import type { AuditRecord } from "./audit/chain.js";
import type { AuditLog } from "./audit/log.js";
import type { Authenticator } from "./auth/principal.js";
import type { Authorizer } from "./authz/cedar.js";
import type { Database } from "./db/schema.js";
import type { KeyService } from "./keys/service.js";
import type { Metrics } from "./metrics.js";

export interface ServiceContext {
  readonly db: Database;
  readonly keys: KeyService;
  readonly artifacts: ArtifactRepo;
  /** Stanza digest → registered artifact, cached (the unwrap decision's `context.artifact`). */
  readonly stanzaArtifacts: StanzaArtifacts;
  readonly audit: AuditLog;
  readonly authenticators: readonly Authenticator[];
  readonly authorizer: Authorizer;
  /** Attested release: absent when no attestation verifier is configured (routes answer 404). */
  readonly attestation: { verifier: AttestationVerifier; nonces: NonceStore } | null;
  readonly metrics: Metrics;
  readonly batchMax: number;
  readonly serverId: string;
}

export function recordFor(
  req: FastifyRequest,
  outcome: AuditRecord["outcome"],
  status: number,
  extra: { resource?: Record<string, unknown>; reason?: string } = {},
): AuditRecord {
  return {
    action:
      req.routeOptions.config.action ?? `${req.method} ${req.routeOptions.url ?? "unmatched"}`,
    outcome,
    status,
    principal: req.principal?.id ?? req.subject ?? null,
    source: req.ip,
    requestId: req.id,
    ...(req.authz
      ? { authz: { decision: req.authz.decision, policies: [...req.authz.policies] } }
      : {}),
    ...extra,
  };
}
