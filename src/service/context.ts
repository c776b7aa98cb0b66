/**
 * What the route plugins share: the services they call (no database access in handlers).
 * Built once per server by wiring.ts; `recordFor` turns a request into its audit record.
 */

import type { FastifyRequest } from "fastify";
import type { BlockList } from "./anomaly/blocks.js";
import type { AnomalyDetector } from "./anomaly/detector.js";
import type { ApprovalService } from "./approvals/service.js";
import type { StanzaArtifacts } from "./artifacts/by-stanza.js";
import type { ArtifactRepo } from "./artifacts/repo.js";
import type { AttestationVerifier } from "./attest/evidence.js";
import type { NonceStore } from "./attest/nonces.js";
import type { AuditRecord } from "./audit/chain.js";
import type { AuditLog } from "./audit/log.js";
import type { Authenticator } from "./auth/principal.js";
import type { RefusalLimiter } from "./auth/refusals.js";
import type { PolicyStore } from "./authz/active.js";
import type { Database } from "./db/schema.js";
import type { DrillRepo } from "./incidents/drills.js";
import type { IncidentRepo } from "./incidents/repo.js";
import type { KeyService } from "./keys/service.js";
import type { Metrics } from "./metrics.js";
import type { SignedWebhook } from "./webhook.js";

export interface ServiceContext {
  /** Direct reads only where no service fits: the health check and audit pages. */
  readonly db: Database;
  /** KEK versions, wrap/unwrap and the key lifecycle. */
  readonly keys: KeyService;
  /** Registered artifacts (the Cedar `Artifact` entities). */
  readonly artifacts: ArtifactRepo;
  /** Stanza digest → registered artifact, cached (the unwrap decision's `context.artifact`). */
  readonly stanzaArtifacts: StanzaArtifacts;
  /** The audit hash chain (sink: the database, or a test double). */
  readonly audit: AuditLog;
  /** Tried in order (mTLS, bootstrap tokens, OIDC/JWT): the first not to pass (null) decides. */
  readonly authenticators: readonly Authenticator[];
  /** The active Cedar policy set (bootstrap, or the newest version approved over the API). */
  readonly policies: PolicyStore;
  /** Dual control: M-of-N approval requests for destroy, export and policy changes. */
  readonly approvals: ApprovalService;
  /** Where approval events go (serve --approval-webhook); drained and closed with the server. */
  readonly approvalWebhook: SignedWebhook | null;
  /** Attested release: absent when no attestation verifier is configured (routes answer 404). */
  readonly attestation: { verifier: AttestationVerifier; nonces: NonceStore } | null;
  readonly metrics: Metrics;
  /** Incidents opened on this service (the console) or mirrored by `incident open --server`. */
  readonly incidents: IncidentRepo;
  /** Drill results sent by `drill run --server`. */
  readonly drills: DrillRepo;
  /** Principals blocked by anomaly auto-block: enforced even where detection is off. */
  readonly blocks: BlockList;
  /** Anomaly detection; null when off. */
  readonly anomaly: AnomalyDetector | null;
  /** Which unauthenticated refusals are audited one by one, and the summaries of the rest. */
  readonly refusals: RefusalLimiter;
  /** Most stanzas per batch unwrap. */
  readonly batchMax: number;
  /** Whether signed checkpoints are also published outside the database (serve --checkpoint-anchor). */
  readonly anchored: boolean;
  readonly serverId: string;
  /** The root's public check value (hex; meta.root_check): what a share rehearsal must rebuild. */
  readonly rootCheck: string;
}

/** The audit record of a request: its action, principal, source, id and the Cedar decision. */
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
