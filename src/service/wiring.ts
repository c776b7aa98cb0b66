/**
 * From ServerOptions to the objects the service runs on: the ServiceContext the route plugins
 * share (repositories, audit log, authenticators, policies, approvals, attestation, anomaly
 * detection), and the checkpoint anchors, which buildServer holds itself (it drains them on
 * close and feeds them the checkpoints the audit store signs).
 */

import type { FastifyBaseLogger } from "fastify";
import { BlockList } from "./anomaly/blocks.js";
import { ClientRegistry } from "./anomaly/clients.js";
import { AnomalyDetector } from "./anomaly/detector.js";
import { type AnomalyOptions, anomalySettings, BLOCK_CACHE_MS } from "./anomaly/options.js";
import { approvalEventBody } from "./approvals/events.js";
import { ApprovalRepo } from "./approvals/repo.js";
import { ApprovalService } from "./approvals/service.js";
import { StanzaArtifacts } from "./artifacts/by-stanza.js";
import { ArtifactRepo } from "./artifacts/repo.js";
import { AttestationVerifier } from "./attest/evidence.js";
import { NonceStore } from "./attest/nonces.js";
import { CheckpointAnchors } from "./audit/anchor.js";
import type { SignedCheckpoint } from "./audit/chain.js";
import { AuditLog } from "./audit/log.js";
import { AuditStore } from "./audit/store.js";
import { PrincipalContainment } from "./auth/containment.js";
import { JwtAuthenticator } from "./auth/jwt.js";
import { MtlsAuthenticator } from "./auth/mtls.js";
import { REFUSAL_LIMIT_DEFAULTS, RefusalLimiter } from "./auth/refusals.js";
import { RevokedCertRepo } from "./auth/revoked-certs.js";
import { StaticTokenAuthenticator, TokenRepo } from "./auth/tokens.js";
import { PolicyStore } from "./authz/active.js";
import { Authorizer } from "./authz/cedar.js";
import type { ServiceContext } from "./context.js";
import { DrillRepo } from "./incidents/drills.js";
import { IncidentRepo } from "./incidents/repo.js";
import { KeyRepo } from "./keys/repo.js";
import { KeyService } from "./keys/service.js";
import type { Metrics } from "./metrics.js";
import { DEFAULT_BATCH_MAX, type ServerOptions } from "./options.js";
import { RootCustody } from "./root-custody.js";
import type { ServerState } from "./state.js";
import { EVENT_ID_HEADER, SignedWebhook } from "./webhook.js";

/** What the context needs from buildServer: the logger, metrics, and who hears of new checkpoints. */
export interface Wiring {
  readonly log: FastifyBaseLogger;
  readonly metrics: Metrics;
  readonly onSigned: (cps: SignedCheckpoint[]) => void;
}

/** The context for the route plugins; throws on a `batchMax` outside 1..10000. */
export function buildContext(o: ServerOptions, state: ServerState, w: Wiring): ServiceContext {
  const { log, metrics, onSigned } = w;
  const batchMax = o.batchMax ?? DEFAULT_BATCH_MAX;
  if (!Number.isInteger(batchMax) || batchMax < 1 || batchMax > 10_000)
    throw new Error("batchMax must be 1..10000");
  const sink =
    o.auditSink ??
    new AuditStore(o.db, {
      every: state.checkpointEvery,
      server: state.serverId,
      key: state.signingKey,
      onSigned,
    });
  const now = o.now ?? Date.now;
  const keys = new KeyService(new KeyRepo(o.db), state, 1000, o.now, o.tiers);
  const audit = new AuditLog(sink);
  const artifacts = new ArtifactRepo(o.db);
  const blocks = new BlockList(o.db, now, o.blockCacheMs ?? BLOCK_CACHE_MS);
  const policies = new PolicyStore(o.db, o.authorizer ?? Authorizer.default(), o.policyCacheMs);
  const approvalWebhook = o.approvals?.webhook
    ? new SignedWebhook({ ...o.approvals.webhook, idHeader: EVENT_ID_HEADER }, (outcome, why) => {
        if (outcome !== "ok") log.warn({ outcome, why }, "approval webhook delivery failed");
      })
    : null;
  const tokenRepo = new TokenRepo(o.db);
  const revokedCerts = new RevokedCertRepo(o.db, o.mtls?.revocationCacheMs);
  const approvals = new ApprovalService(
    new ApprovalRepo(o.db),
    {
      keys,
      policies,
      custody: new RootCustody(o.db),
      contain: new PrincipalContainment(o.db, blocks, tokenRepo, revokedCerts),
    },
    (r) => audit.append(r),
    now,
    o.approvals,
    approvalWebhook
      ? (e) => {
          const { id, body } = approvalEventBody(e, state.serverId, new Date(now()).toISOString());
          approvalWebhook.send(id, body);
        }
      : null,
  );
  return {
    db: o.db,
    keys,
    artifacts,
    stanzaArtifacts: new StanzaArtifacts(artifacts),
    audit,
    authenticators: o.authenticators ?? [
      // First: a presented certificate is checked (and a bad one denies) before any token.
      ...(o.tls?.clientCa ? [new MtlsAuthenticator(revokedCerts, o.mtls ?? {})] : []),
      new StaticTokenAuthenticator(tokenRepo, state.root.auditHmac),
      ...(o.jwt ? [new JwtAuthenticator(o.jwt, state.root.auditHmac)] : []),
    ],
    policies,
    approvals,
    approvalWebhook,
    attestation: o.attestation
      ? {
          verifier: new AttestationVerifier(o.attestation),
          nonces: new NonceStore(o.db, o.attestation.nonceTtlMs),
        }
      : null,
    metrics,
    incidents: new IncidentRepo(o.db, now),
    drills: new DrillRepo(o.db, now),
    blocks,
    anomaly: o.anomaly ? detector(o, o.anomaly, { now, audit, metrics, blocks, log, state }) : null,
    refusals: new RefusalLimiter({ ...REFUSAL_LIMIT_DEFAULTS, ...o.refusalLimit }, now),
    batchMax,
    anchored: Boolean(o.checkpointAnchor?.file || o.checkpointAnchor?.url),
    serverId: state.serverId,
    rootCheck: state.root.check,
  };
}

function detector(
  o: ServerOptions,
  a: AnomalyOptions,
  x: {
    now: () => number;
    audit: AuditLog;
    metrics: Metrics;
    blocks: BlockList;
    log: FastifyBaseLogger;
    state: ServerState;
  },
): AnomalyDetector {
  const webhook = a.webhook
    ? new SignedWebhook(a.webhook, (outcome, why) => {
        x.metrics.webhookDelivery(outcome);
        if (outcome !== "ok") x.log.warn({ outcome, why }, "alert webhook delivery failed");
      })
    : null;
  return new AnomalyDetector({
    settings: anomalySettings(a),
    clients: new ClientRegistry(o.db, x.now),
    blocks: x.blocks,
    webhook,
    audit: x.audit,
    metrics: x.metrics,
    log: x.log,
    now: x.now,
    serverId: x.state.serverId,
  });
}

/** The anchors for `checkpointAnchor`; null when it names no target. */
export function checkpointAnchors(
  o: ServerOptions,
  state: ServerState,
  metrics: Metrics,
  log: () => FastifyBaseLogger | null,
): CheckpointAnchors | null {
  const a = o.checkpointAnchor;
  if (!a?.file && !a?.url) return null;
  return new CheckpointAnchors(state.serverId, a, {
    anchored: (target) => metrics.anchor(target, "ok"),
    failed: (target, seq, err) => {
      metrics.anchor(target, "failed");
      log()?.error(
        { err, target, seq },
        "checkpoint anchoring failed (the checkpoint stays in the database)",
      );
    },
  });
}
