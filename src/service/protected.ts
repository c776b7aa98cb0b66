/**
 * The protected scope: authentication as an onRequest hook registered only here (public routes
 * never see it), authorization as one preHandler (Cedar, default deny: every route declares its
 * action and resources in `config.authz`), and an error handler that writes the audit entry of
 * every refused or failed request before answering. Successful routes write theirs through
 * `release`, before the response, so no key leaves without a durable audit entry.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { AuthzRequest, Decision } from "./authz/cedar.js";
import { resolveResource } from "./authz/resolve.js";
import { recordFor, type ServiceContext } from "./context.js";
import { deny, publicError, ServiceError } from "./errors.js";
import { artifactRoutes } from "./routes/artifacts.js";
import { attestationRoutes } from "./routes/attestation.js";
import { auditRoutes } from "./routes/audit.js";
import { datakeyRoutes } from "./routes/datakeys.js";
import { keyRoutes } from "./routes/keys.js";

export async function protectedScope(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.addHook("onRequest", async (req) => {
    for (const a of ctx.authenticators) {
      const r = await a.authenticate(req);
      if (r === null) continue;
      if ("denied" in r) {
        req.subject = r.subject;
        deny(401, r.denied);
      }
      req.principal = r;
      break;
    }
    if (!req.principal) deny(401, "no credentials this service accepts");
  });

  // The one authorization call: after body validation, before any handler runs.
  app.addHook("preHandler", async (req) => {
    await authorize(ctx, req);
  });

  app.setErrorHandler(async (err, req, reply) => {
    const pe = publicError(err, req.id);
    if (pe.status >= 500) req.log.error({ err }, "request failed");
    let status = pe.status;
    let body = { error: pe.code, message: pe.message };
    if (!req.audited) {
      req.audited = true;
      const outcome = status === 401 || status === 403 ? "denied" : "error";
      try {
        await ctx.audit.append(recordFor(req, outcome, status, { reason: pe.message }));
      } catch (e) {
        req.log.error({ err: e }, "audit write failed");
        status = 503;
        body = {
          error: "audit_unavailable",
          message: "the audit log is unavailable: request refused",
        };
      }
    }
    return reply.code(status).send(body);
  });

  await app.register(keyRoutes, ctx);
  await app.register(datakeyRoutes, ctx);
  await app.register(attestationRoutes, ctx);
  await app.register(artifactRoutes, ctx);
  await app.register(auditRoutes, ctx);
}

/**
 * Decides the request with Cedar and records the decision on it (for the audit entry). A route
 * without an `authz` rule, a context provider that fails (e.g. evidence that does not verify)
 * or an evaluation error denies.
 */
async function authorize(ctx: ServiceContext, req: FastifyRequest): Promise<void> {
  const p = req.principal;
  const spec = req.routeOptions.config.authz;
  if (!p || !spec) {
    req.authz = { decision: "deny", policies: [] };
    deny(403, "this route has no authorization rule: denied (fail closed)");
  }
  let extra: Record<string, unknown> = {};
  if (spec.context) {
    try {
      extra = await spec.context(req);
    } catch (e) {
      if (e instanceof ServiceError && e.status === 403)
        req.authz = { decision: "deny", policies: [] };
      throw e;
    }
  }
  const base = requestFor(req, spec.action, extra);
  const permits = new Set<string>();
  let d: Decision | null = null;
  // In order, each resolved just before its decision: a denied Service check looks nothing up.
  for (const r of spec.resources(req)) {
    d = ctx.authorizer.authorize({ ...base, resources: [await resolveResource(ctx, r)] });
    if (d.decision === "deny") break;
    for (const id of d.policies) permits.add(id);
  }
  if (d === null) d = ctx.authorizer.authorize({ ...base, resources: [] });
  else if (d.decision === "allow") d = { ...d, policies: [...permits].sort() };
  req.authz = { decision: d.decision, policies: d.policies };
  if (d.decision === "deny") deny(403, d.reason);
}

/** The Cedar request of an authenticated request, without resources (see `authorize`). */
export function requestFor(
  req: FastifyRequest,
  action: string,
  extra: Record<string, unknown> = {},
): Omit<AuthzRequest, "resources"> {
  const p = req.principal;
  if (!p) throw new ServiceError(401, "unauthenticated", "not authenticated");
  return {
    principal: { id: p.id, type: p.type ?? "Workload", kind: p.kind, roles: p.roles },
    action,
    context: {
      source: req.ip,
      time: Math.floor(Date.now() / 1000),
      principalKind: p.kind,
      workload: p.workload ?? { kind: p.kind, id: p.id },
      ...extra,
    },
  };
}

/** Writes the allowed request's audit entry; throws 503 (fail closed) if it cannot. */
export async function release(
  ctx: ServiceContext,
  req: FastifyRequest,
  resource: Record<string, unknown>,
): Promise<void> {
  try {
    await ctx.audit.append(recordFor(req, "allowed", 200, { resource }));
  } catch (e) {
    req.log.error({ err: e }, "audit write failed: nothing released");
    throw new ServiceError(
      503,
      "audit_unavailable",
      "the audit log is unavailable: nothing was released",
    );
  }
  req.audited = true;
}
