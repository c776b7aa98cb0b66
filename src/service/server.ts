/**
 * buildServer: the key service as a Fastify instance, made of plugins — public routes, and a
 * protected scope with authentication, scopes, audit and the key routes. Injectable for tests
 * (`app.inject`), or `listen` over TLS (`tls`); plain HTTP only when the caller says so.
 */

import { randomUUID } from "node:crypto";
import type { Writable } from "node:stream";
import swagger from "@fastify/swagger";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import { BlockList } from "./anomaly/blocks.js";
import { ClientRegistry } from "./anomaly/clients.js";
import { AnomalyDetector } from "./anomaly/detector.js";
import { type AnomalyOptions, anomalySettings, BLOCK_CACHE_MS } from "./anomaly/options.js";
import { AlertWebhook } from "./anomaly/webhook.js";
import { ApprovalRepo } from "./approvals/repo.js";
import { type ApprovalOptions, ApprovalService } from "./approvals/service.js";
import { StanzaArtifacts } from "./artifacts/by-stanza.js";
import { ArtifactRepo } from "./artifacts/repo.js";
import { AttestationVerifier, type AttestationVerifierOptions } from "./attest/evidence.js";
import { NonceStore } from "./attest/nonces.js";
import { type AnchorOptions, CheckpointAnchors } from "./audit/anchor.js";
import type { SignedCheckpoint } from "./audit/chain.js";
import { AuditLog, type AuditSink } from "./audit/log.js";
import { AuditStore } from "./audit/store.js";
import {
  type CheckpointSchedule,
  DEFAULT_CHECKPOINT_INTERVAL_S,
  startTimedCheckpoints,
} from "./audit/timed.js";
import { JwtAuthenticator, type JwtOptions } from "./auth/jwt.js";
import { MtlsAuthenticator, type MtlsOptions } from "./auth/mtls.js";
import type { Authenticator } from "./auth/principal.js";
import { RevokedCertRepo } from "./auth/revoked-certs.js";
import { StaticTokenAuthenticator, TokenRepo } from "./auth/tokens.js";
import { PolicyStore } from "./authz/active.js";
import { Authorizer } from "./authz/cedar.js";
import type { ServiceContext } from "./context.js";
import type { Database } from "./db/schema.js";
import { loggableError } from "./db/unavailable.js";
import { publicError } from "./errors.js";
import { KeyRepo } from "./keys/repo.js";
import { KeyService } from "./keys/service.js";
import { Metrics } from "./metrics.js";
import { protectedScope } from "./protected.js";
import type { RootRecovery } from "./root-shares.js";
import { sweep } from "./routes/keys.js";
import { publicRoutes } from "./routes/public.js";
import { loadServerState, type ServerState } from "./state.js";

export const DEFAULT_BATCH_MAX = 100;

/** Log fields that must never be written even if some code puts them in a log object. */
export const REDACT = [
  "req.headers.authorization",
  "req.headers.cookie",
  "headers.authorization",
  "authorization",
  "token",
  "fileKey",
  "*.token",
  "*.fileKey",
  "body",
  "*.body",
];

export interface ServerOptions {
  readonly db: Database;
  /** The 32-byte root key every KEK version is sealed under (the process keeps only derived keys). */
  readonly rootKey: Uint8Array;
  /**
   * TLS material (PEM). Without it the instance is plain HTTP: for inject() and loopback tests.
   * `clientCa` (CAs trusted for client certificates) turns on mTLS; `crl` (PEM CRLs of those
   * CAs) makes a revoked certificate fail with CERT_REVOKED — every client CA then needs one.
   */
  readonly tls?: {
    key: string | Buffer;
    cert: string | Buffer;
    clientCa?: string | Buffer;
    crl?: string | Buffer;
  };
  /** SPIFFE principals from client certificates (needs `tls.clientCa`). */
  readonly mtls?: MtlsOptions;
  readonly logger?: { level?: string; stream?: Writable } | false;
  readonly batchMax?: number;
  readonly checkpointEvery?: number;
  /** Also sign the head when entries are unsigned and no checkpoint is this old (s; default 60, 0 = off). */
  readonly checkpointIntervalS?: number;
  /** The timer behind checkpointIntervalS (default setInterval); tests drive it by hand. */
  readonly checkpointSchedule?: CheckpointSchedule;
  /** Copy every checkpoint signed here to an append-only file and/or an HTTPS endpoint. */
  readonly checkpointAnchor?: AnchorOptions;
  /** Authenticators tried in order; default: the static bootstrap tokens, then OIDC/JWT if `jwt`. */
  readonly authenticators?: Authenticator[];
  /** OIDC/JWT bearer tokens (issuer, audience, JWKS, roles claim). */
  readonly jwt?: JwtOptions;
  /**
   * The bootstrap Cedar policies, used while no policy set was approved over the API (the
   * `policies` table is empty); default: the built-in set reproducing the scope semantics.
   */
  readonly authorizer?: Authorizer;
  /** How long a replica trusts its copy of the active policy version (ms, default 2000). */
  readonly policyCacheMs?: number;
  /** Dual control: approvals needed per operation (default 1 each) and request lifetime. */
  readonly approvals?: ApprovalOptions;
  /** Attested release: the verifier's issuer and JWKS; nonce lifetime (default 60 s). */
  readonly attestation?: AttestationVerifierOptions & { nonceTtlMs?: number };
  /** The clock (Unix ms) for key lifecycle (destruction waiting periods); default Date.now. */
  readonly now?: () => number;
  /** How often scheduled destructions are carried out (ms, default 60 s; 0 = only on requests). */
  readonly sweepEveryMs?: number;
  /** The root was rebuilt from shares: a `root.recover` entry is audited before serving. */
  readonly rootRecovery?: RootRecovery;
  /** Where audit entries go; default: the database chain. Tests inject a failing one. */
  readonly auditSink?: AuditSink;
  /**
   * Anomaly detection (rate jumps, first-seen clients, alerts, auto-block); off when absent.
   * Blocks already in the database are enforced either way.
   */
  readonly anomaly?: AnomalyOptions;
  /** How long the blocked set is cached per replica (ms, default 2000). */
  readonly blockCacheMs?: number;
}

declare module "fastify" {
  interface FastifyInstance {
    tensorseal: {
      serverId: string;
      auditPublicKey: string;
      /** A checkpoint is signed at every multiple of this seq (meta.checkpoint_every). */
      checkpointEvery: number;
      /** Waits for queued alert webhooks (tests); true when none is left. */
      drainAlerts(ms?: number): Promise<boolean>;
      /** Resolves once every checkpoint signed so far was anchored or given up. */
      anchored(): Promise<void>;
    };
  }
}

export async function buildServer(o: ServerOptions): Promise<FastifyInstance> {
  const state = await loadServerState(o.db, o.rootKey, { checkpointEvery: o.checkpointEvery });
  if ((o.tls?.crl || o.mtls) && !o.tls?.clientCa)
    throw new Error("client CRLs and mTLS options need tls.clientCa");
  const metrics = new Metrics();
  let log: FastifyBaseLogger | null = null;
  const anchors = anchorsFor(o, state, metrics, () => log);
  const onSigned = (cps: SignedCheckpoint[]) => {
    metrics.checkpointsSigned(cps.length);
    anchors?.publish(cps);
  };
  const app = Fastify({
    ...(o.tls ? { https: httpsOptions(o.tls) } : {}),
    logger:
      o.logger === false
        ? false
        : {
            level: o.logger?.level ?? "info",
            redact: { paths: REDACT, censor: "[redacted]" },
            ...(o.logger?.stream ? { stream: o.logger.stream } : {}),
          },
    // One line per response from our onResponse hook instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 4 << 20,
    // Reject unknown properties and wrong types instead of silently fixing the request.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    return503OnClosing: true,
    // Request ids name audit entries in a chain shared by replicas and kept across restarts:
    // Fastify's default (`req-1`, `req-2`... per process) repeats on every replica and after
    // every restart. Random ids, never taken from a client header.
    genReqId: () => `req-${randomUUID()}`,
    requestIdHeader: false,
  }) as unknown as FastifyInstance;
  log = app.log;
  const ctx = context(o, state, { log: app.log, metrics, onSigned });
  if (o.rootRecovery) {
    // Fail closed: a recovery that cannot be audited does not serve.
    await ctx.audit.append({
      action: "root.recover",
      outcome: "allowed",
      status: 200,
      principal: "system:operator",
      source: "server",
      requestId: `root-recover-${o.rootRecovery.split}`,
      resource: { ...o.rootRecovery },
    });
  }
  app.decorate("tensorseal", {
    serverId: state.serverId,
    auditPublicKey: state.auditPublicKey,
    checkpointEvery: state.checkpointEvery,
    drainAlerts: async (ms?: number) => (await ctx.anomaly?.drain(ms)) ?? true,
    anchored: async () => anchors?.idle(),
  });
  app.decorateRequest("principal", null);
  app.decorateRequest("subject", null);
  app.decorateRequest("audited", false);
  app.decorateRequest("authz", null);
  app.decorateRequest("clientCert", null);
  o.db.onConnectionError = (e) => app.log.warn({ db: e }, "database connection lost");
  // The id the audit entry carries, so a client (or an operator) can find a request's entry.
  app.addHook("onRequest", async (req, reply) => {
    reply.header("x-request-id", req.id);
  });
  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unmatched";
    ctx.metrics.request(route, req.method, reply.statusCode);
    req.log.info(
      {
        route,
        method: req.method,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        principal: req.principal?.id ?? req.subject ?? null,
      },
      "request",
    );
  });
  app.setErrorHandler(async (err, req, reply) => {
    const pe = publicError(err, req.id);
    if (pe.status >= 500) req.log.error({ err: loggableError(err) }, "request failed");
    return reply.code(pe.status).send({ error: pe.code, message: pe.message });
  });
  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: { title: "TensorSeal key service", version: "0.1.0" },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    },
  });
  await app.register(publicRoutes, ctx);
  await app.register(protectedScope, ctx);
  const every = o.sweepEveryMs ?? 60_000;
  const timer =
    every > 0
      ? setInterval(() => {
          sweep(ctx).catch((err) => app.log.error({ err }, "scheduled key destruction failed"));
        }, every).unref()
      : null;
  const stopCheckpoints = startTimedCheckpoints({
    log: ctx.audit,
    intervalS: o.checkpointIntervalS ?? DEFAULT_CHECKPOINT_INTERVAL_S,
    now: o.now ?? Date.now,
    ...(o.checkpointSchedule ? { schedule: o.checkpointSchedule } : {}),
    failed: (err) => app.log.error({ err }, "time-based audit checkpoint failed"),
  });
  app.addHook("onClose", async () => {
    if (timer) clearInterval(timer);
    // Give queued alerts a moment to go out; the audit already holds them.
    await ctx.anomaly?.drain(2000);
    ctx.anomaly?.close();
    stopCheckpoints();
    // Best effort: give pending anchors a moment, never hang the shutdown on a dead endpoint.
    if (anchors) await Promise.race([anchors.idle(), delay(5000)]);
    ctx.keys.close();
  });
  return app;
}

/**
 * A client certificate is requested but never enforced at the handshake: the mTLS
 * authenticator answers a bad one with an audited 401 (see auth/mtls.ts).
 */
function httpsOptions(t: NonNullable<ServerOptions["tls"]>) {
  return {
    key: t.key,
    cert: t.cert,
    minVersion: "TLSv1.2" as const,
    ...(t.clientCa
      ? {
          ca: t.clientCa,
          requestCert: true,
          rejectUnauthorized: false,
          ...(t.crl ? { crl: t.crl } : {}),
        }
      : {}),
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function anchorsFor(
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

/** What the context needs from buildServer: the logger, metrics, and who hears of new checkpoints. */
interface Wiring {
  readonly log: FastifyBaseLogger;
  readonly metrics: Metrics;
  readonly onSigned: (cps: SignedCheckpoint[]) => void;
}

function context(o: ServerOptions, state: ServerState, w: Wiring): ServiceContext {
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
  const keys = new KeyService(new KeyRepo(o.db), state, 1000, o.now);
  const audit = new AuditLog(sink);
  const artifacts = new ArtifactRepo(o.db);
  const blocks = new BlockList(o.db, now, o.blockCacheMs ?? BLOCK_CACHE_MS);
  const policies = new PolicyStore(o.db, o.authorizer ?? Authorizer.default(), o.policyCacheMs);
  const approvals = new ApprovalService(
    new ApprovalRepo(o.db),
    { keys, policies },
    (r) => audit.append(r),
    now,
    o.approvals,
  );
  return {
    db: o.db,
    keys,
    artifacts,
    stanzaArtifacts: new StanzaArtifacts(artifacts),
    audit,
    authenticators: o.authenticators ?? [
      // First: a presented certificate is checked (and a bad one denies) before any token.
      ...(o.tls?.clientCa
        ? [
            new MtlsAuthenticator(
              new RevokedCertRepo(o.db, o.mtls?.revocationCacheMs),
              o.mtls ?? {},
            ),
          ]
        : []),
      new StaticTokenAuthenticator(new TokenRepo(o.db), state.root.auditHmac),
      ...(o.jwt ? [new JwtAuthenticator(o.jwt, state.root.auditHmac)] : []),
    ],
    policies,
    approvals,
    attestation: o.attestation
      ? {
          verifier: new AttestationVerifier(o.attestation),
          nonces: new NonceStore(o.db, o.attestation.nonceTtlMs),
        }
      : null,
    metrics,
    blocks,
    anomaly: o.anomaly ? detector(o, o.anomaly, { now, audit, metrics, blocks, log, state }) : null,
    batchMax,
    serverId: state.serverId,
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
    ? new AlertWebhook(a.webhook, (outcome, why) => {
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
