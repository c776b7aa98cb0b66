/**
 * buildServer: the key service as a Fastify instance, made of plugins — public routes, and a
 * protected scope with authentication, scopes, audit and the key routes. Injectable for tests
 * (`app.inject`), or `listen` over TLS (`tls`); plain HTTP only when the caller says so.
 */

import type { Writable } from "node:stream";
import swagger from "@fastify/swagger";
import Fastify, { type FastifyInstance, LogController } from "fastify";
import { StanzaArtifacts } from "./artifacts/by-stanza.js";
import { ArtifactRepo } from "./artifacts/repo.js";
import { AttestationVerifier, type AttestationVerifierOptions } from "./attest/evidence.js";
import { NonceStore } from "./attest/nonces.js";
import { AuditLog, type AuditSink } from "./audit/log.js";
import { AuditStore } from "./audit/store.js";
import { JwtAuthenticator, type JwtOptions } from "./auth/jwt.js";
import type { Authenticator } from "./auth/principal.js";
import { StaticTokenAuthenticator, TokenRepo } from "./auth/tokens.js";
import { Authorizer } from "./authz/cedar.js";
import type { ServiceContext } from "./context.js";
import type { Database } from "./db/schema.js";
import { publicError } from "./errors.js";
import { KeyRepo } from "./keys/repo.js";
import { KeyService } from "./keys/service.js";
import { Metrics } from "./metrics.js";
import { protectedScope } from "./protected.js";
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
  /** TLS material (PEM). Without it the instance is plain HTTP: for inject() and loopback tests. */
  readonly tls?: { key: string | Buffer; cert: string | Buffer };
  readonly logger?: { level?: string; stream?: Writable } | false;
  readonly batchMax?: number;
  readonly checkpointEvery?: number;
  /** Authenticators tried in order; default: the static bootstrap tokens, then OIDC/JWT if `jwt`. */
  readonly authenticators?: Authenticator[];
  /** OIDC/JWT bearer tokens (issuer, audience, JWKS, roles claim). */
  readonly jwt?: JwtOptions;
  /** Cedar policies; default: the built-in set reproducing the scope semantics. */
  readonly authorizer?: Authorizer;
  /** Attested release: the verifier's issuer and JWKS; nonce lifetime (default 60 s). */
  readonly attestation?: AttestationVerifierOptions & { nonceTtlMs?: number };
  /** The clock (Unix ms) for key lifecycle (destruction waiting periods); default Date.now. */
  readonly now?: () => number;
  /** How often scheduled destructions are carried out (ms, default 60 s; 0 = only on requests). */
  readonly sweepEveryMs?: number;
  /** Where audit entries go; default: the database chain. Tests inject a failing one. */
  readonly auditSink?: AuditSink;
}

declare module "fastify" {
  interface FastifyInstance {
    tensorseal: { serverId: string; auditPublicKey: string };
  }
}

export async function buildServer(o: ServerOptions): Promise<FastifyInstance> {
  const state = await loadServerState(o.db, o.rootKey, { checkpointEvery: o.checkpointEvery });
  const ctx = context(o, state);
  const app = Fastify({
    ...(o.tls
      ? { https: { key: o.tls.key, cert: o.tls.cert, minVersion: "TLSv1.2" as const } }
      : {}),
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
  }) as unknown as FastifyInstance;
  app.decorate("tensorseal", { serverId: state.serverId, auditPublicKey: state.auditPublicKey });
  app.decorateRequest("principal", null);
  app.decorateRequest("subject", null);
  app.decorateRequest("audited", false);
  app.decorateRequest("authz", null);
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
    if (pe.status >= 500) req.log.error({ err }, "request failed");
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
  app.addHook("onClose", async () => {
    if (timer) clearInterval(timer);
    ctx.keys.close();
  });
  return app;
}

function context(o: ServerOptions, state: ServerState): ServiceContext {
  const batchMax = o.batchMax ?? DEFAULT_BATCH_MAX;
  if (!Number.isInteger(batchMax) || batchMax < 1 || batchMax > 10_000)
    throw new Error("batchMax must be 1..10000");
  const sink =
    o.auditSink ??
    new AuditStore(o.db, {
      every: state.checkpointEvery,
      server: state.serverId,
      key: state.signingKey,
    });
  const artifacts = new ArtifactRepo(o.db);
  return {
    db: o.db,
    keys: new KeyService(new KeyRepo(o.db), state, 1000, o.now),
    artifacts,
    stanzaArtifacts: new StanzaArtifacts(artifacts),
    audit: new AuditLog(sink),
    authenticators: o.authenticators ?? [
      new StaticTokenAuthenticator(new TokenRepo(o.db), state.root.auditHmac),
      ...(o.jwt ? [new JwtAuthenticator(o.jwt, state.root.auditHmac)] : []),
    ],
    authorizer: o.authorizer ?? Authorizer.default(),
    attestation: o.attestation
      ? {
          verifier: new AttestationVerifier(o.attestation),
          nonces: new NonceStore(o.db, o.attestation.nonceTtlMs),
        }
      : null,
    metrics: new Metrics(),
    batchMax,
    serverId: state.serverId,
  };
}
