/**
 * buildServer: the key service as a Fastify instance, made of plugins — public routes, and a
 * protected scope with authentication, scopes, audit and the key routes. Injectable for tests
 * (`app.inject`), or `listen` over TLS (`tls`); plain HTTP only when the caller says so.
 * ServerOptions are in options.ts, the ServiceContext is built in wiring.ts.
 */

import { randomUUID } from "node:crypto";
import type { Server } from "node:https";
import type { TLSSocket } from "node:tls";
import swagger from "@fastify/swagger";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import type { CheckpointAnchors } from "./audit/anchor.js";
import type { SignedCheckpoint } from "./audit/chain.js";
import { DEFAULT_CHECKPOINT_INTERVAL_S, startTimedCheckpoints } from "./audit/timed.js";
import { refusalRecord } from "./auth/refusals.js";
import { withConsole } from "./console/index.js";
import type { ServiceContext } from "./context.js";
import { loggableError } from "./db/unavailable.js";
import { publicError } from "./errors.js";
import { unknownRoutes } from "./methods.js";
import { Metrics } from "./metrics.js";
import { openapiOptions } from "./openapi.js";
import type { ServerOptions } from "./options.js";
import { protectedScope } from "./protected.js";
import { admitCustody, databaseIsNew } from "./root-custody.js";
import { sweep } from "./routes/keys.js";
import { publicRoutes } from "./routes/public.js";
import { loadServerState } from "./state.js";
import { serverTimeouts, timeoutOptions } from "./timeouts.js";
import { httpsOptions, type ServerTls } from "./tls/https.js";
import { TlsReloader, type TlsReloadSummary } from "./tls/reload.js";
import { buildContext, checkpointAnchors } from "./wiring.js";

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
      /**
       * Replaces the TLS material while serving (tls/reload.ts): checked, audited as
       * `tls.reload`, then installed; throws, changing nothing, if it is unusable or the audit
       * cannot be written.
       */
      reloadTls(next: ServerTls): Promise<TlsReloadSummary>;
    };
  }
}

export async function buildServer(o: ServerOptions): Promise<FastifyInstance> {
  const databaseWasNew = o.rootUnseal ? await databaseIsNew(o.db) : false;
  const state = await loadServerState(o.db, o.rootKey, { checkpointEvery: o.checkpointEvery });
  if ((o.tls?.crl || o.mtls) && !o.tls?.clientCa)
    throw new Error("client CRLs and mTLS options need tls.clientCa");
  const metrics = new Metrics();
  // The anchors exist before the app; they log through it once it does.
  let log: FastifyBaseLogger | null = null;
  const anchors = checkpointAnchors(o, state, metrics, () => log);
  const onSigned = (cps: SignedCheckpoint[]) => {
    metrics.checkpointsSigned(cps.length);
    anchors?.publish(cps);
  };
  const app = Fastify(fastifyOptions(o)) as unknown as FastifyInstance;
  log = app.log;
  const built = buildContext(o, state, { log: app.log, metrics, onSigned });
  if (o.rootUnseal) {
    // Fail closed: a custody never approved for this database does not serve, nor one that
    // cannot be audited.
    const rec = await admitCustody(
      o.db,
      o.rootUnseal,
      databaseWasNew,
      new Date(o.now?.() ?? Date.now()),
    );
    await built.audit.append({
      action: "root.unseal",
      outcome: "allowed",
      status: 200,
      principal: "system:operator",
      source: "server",
      requestId: `root-unseal-${state.serverId}`,
      resource: { custody: rec.custody, approval: rec.approval },
    });
  }
  if (o.rootRecovery) {
    // Fail closed: a recovery that cannot be audited does not serve.
    await built.audit.append({
      action: "root.recover",
      outcome: "allowed",
      status: 200,
      principal: "system:operator",
      source: "server",
      requestId: `root-recover-${o.rootRecovery.split}`,
      resource: { ...o.rootRecovery },
    });
  }
  const tls = o.tls ? new TlsReloader(o.tls, app.server as Server, o.now) : null;
  // One reload at a time: each is checked against, and audited after, the one before it.
  let reloads: Promise<unknown> = Promise.resolve();
  app.decorate("tensorseal", {
    serverId: state.serverId,
    auditPublicKey: state.auditPublicKey,
    checkpointEvery: state.checkpointEvery,
    drainAlerts: async (ms?: number) => (await built.anomaly?.drain(ms)) ?? true,
    anchored: async () => anchors?.idle(),
    reloadTls: (next: ServerTls) => {
      const run = reloads.then(async () => {
        if (!tls) throw new Error("this server was built without TLS");
        const prepared = tls.prepare(next);
        // Fail closed: a change of trust that cannot be audited is not made.
        await built.audit.append({
          action: "tls.reload",
          outcome: "allowed",
          status: 200,
          principal: "system:operator",
          source: "server",
          requestId: `tls-reload-${randomUUID()}`,
          resource: { ...prepared.summary },
        });
        tls.apply(prepared);
        app.log.info({ tls: prepared.summary }, "TLS material reloaded");
        return prepared.summary;
      });
      reloads = run.catch(() => {});
      return run;
    },
  });
  app.decorateRequest("principal", null);
  app.decorateRequest("subject", null);
  app.decorateRequest("audited", false);
  app.decorateRequest("authz", null);
  app.decorateRequest("clientCert", null);
  o.db.onConnectionError = (e) => app.log.warn({ db: e }, "database connection lost");
  requestHooks(app, built);
  if (tls) staleConnectionHook(app, tls);
  unknownRoutes(app);
  await app.register(swagger, openapiOptions);
  // The web console (console/): its session cookie authenticates like the credential behind it.
  const ctx = o.console
    ? await withConsole(app, built, {
        console: o.console,
        tls: !!o.tls,
        ...(o.now ? { now: o.now } : {}),
      })
    : built;
  await app.register(publicRoutes, ctx);
  await app.register(protectedScope, ctx);
  backgroundTasks(app, o, ctx, anchors);
  return app;
}

/**
 * The longest path parameter the router passes on (decoded): a principal id can be a SPIFFE ID
 * of 2048 bytes, percent-encoded in the path. Anything up to Node's header size reaches the
 * route, whose schema then answers 400 naming the limit (find-my-way's default, 100, answered
 * 414 for ids the service accepts everywhere else).
 */
export const MAX_PARAM_LENGTH = 16 * 1024;

/**
 * Node's limit on the request line and headers (default 16 KiB). A 2048-character principal
 * id percent-encoded as 4-byte UTF-8 is 24 KiB: raised so that such a path still reaches the
 * route and is answered by its schema rather than by a bare 431.
 */
export const MAX_HEADER_BYTES = 32 * 1024;

function fastifyOptions(o: ServerOptions) {
  const timeouts = timeoutOptions(serverTimeouts(o.timeouts));
  const node = { ...timeouts.node, maxHeaderSize: MAX_HEADER_BYTES };
  return {
    ...(o.tls ? { https: { ...httpsOptions(o.tls), ...node } } : { http: node }),
    ...timeouts.fastify,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
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
    requestIdHeader: false as const,
  };
}

/** The request id header, one log line and a metric per response, and the error mapping. */
function requestHooks(app: FastifyInstance, ctx: ServiceContext): void {
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
}

/**
 * A request on a connection whose client certificate was verified under replaced client CAs or
 * CRL goes to a new connection (tls/reload.ts), before anything authenticates it.
 */
function staleConnectionHook(app: FastifyInstance, tls: TlsReloader): void {
  app.addHook("onRequest", async (req, reply) => {
    if (!tls.stale(req.raw.socket as TLSSocket)) return;
    reply.header("connection", "close").code(421);
    return reply.send({
      error: "misdirected_request",
      message:
        "this connection's client certificate was verified under TLS trust the server has since replaced: retry on a new connection",
    });
  });
}

/** Scheduled key destruction and time-based checkpoints; stopped (and drained) on close. */
function backgroundTasks(
  app: FastifyInstance,
  o: ServerOptions,
  ctx: ServiceContext,
  anchors: CheckpointAnchors | null,
): void {
  const every = o.sweepEveryMs ?? 60_000;
  const timer =
    every > 0
      ? setInterval(() => {
          sweep(ctx).catch((err) => app.log.error({ err }, "scheduled key destruction failed"));
        }, every).unref()
      : null;
  const report = () => reportRefusals(ctx, app.log);
  const reports = setInterval(report, ctx.refusals.opts.reportEveryMs).unref();
  const stopCheckpoints = startTimedCheckpoints({
    log: ctx.audit,
    intervalS: o.checkpointIntervalS ?? DEFAULT_CHECKPOINT_INTERVAL_S,
    now: o.now ?? Date.now,
    ...(o.checkpointSchedule ? { schedule: o.checkpointSchedule } : {}),
    failed: (err) => app.log.error({ err }, "time-based audit checkpoint failed"),
  });
  app.addHook("onClose", async () => {
    if (timer) clearInterval(timer);
    clearInterval(reports);
    // Give queued alerts and approval events a moment to go out; the audit already holds them.
    await Promise.all([ctx.anomaly?.drain(2000), ctx.approvalWebhook?.drain(2000)]);
    ctx.anomaly?.close();
    ctx.approvalWebhook?.close();
    stopCheckpoints();
    await report();
    // A clean shutdown leaves no unsigned tail: every request has finished (the server closed
    // first), so the head is final; it is signed and anchored like any checkpoint.
    await ctx.audit
      .checkpointIfDue((o.now ?? Date.now)(), 0)
      .then((cp) => cp && app.log.info({ seq: cp.seq }, "final audit checkpoint signed"))
      .catch((err) => app.log.error({ err: loggableError(err) }, "final audit checkpoint failed"));
    // Best effort: give pending anchors a moment, never hang the shutdown on a dead endpoint.
    if (anchors) await Promise.race([anchors.idle(), delay(5000)]);
    ctx.keys.close();
  });
}

/**
 * Writes the summaries of unauthenticated refusals that were not audited one by one; a summary
 * whose entry cannot be written is kept for the next report (counted once either way).
 */
async function reportRefusals(ctx: ServiceContext, log: FastifyBaseLogger): Promise<void> {
  const due = ctx.refusals.take();
  const results = await Promise.allSettled(
    due.map((s) => ctx.audit.append(refusalRecord(s, `refusals-${randomUUID()}`))),
  );
  const failed = due.filter((_, i) => results[i]!.status === "rejected");
  if (failed.length === 0) return;
  ctx.refusals.restore(failed);
  log.error({ sources: failed.length }, "refusal summaries not written (kept for the next report)");
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
