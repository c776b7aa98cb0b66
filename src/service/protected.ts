/**
 * The protected scope: authentication as an onRequest hook registered only here (public routes
 * never see it), authorization as one preHandler (Cedar, default deny: every route declares its
 * action and resources in `config.authz`), and an error handler that writes the audit entry of
 * every refused or failed request before answering. Successful routes write theirs through
 * `release`, before the response, so no key leaves without a durable audit entry.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { auditedErrorReply } from "./audited-error.js";
import type { RouteResource } from "./auth/principal.js";
import type { AuthzRequest, AuthzResource, Decision } from "./authz/cedar.js";
import { resolveResource } from "./authz/resolve.js";
import { recordFor, type ServiceContext } from "./context.js";
import { loggableError } from "./db/unavailable.js";
import { deny, ServiceError } from "./errors.js";
import { approvalRoutes } from "./routes/approvals.js";
import { artifactRoutes } from "./routes/artifacts.js";
import { attestationRoutes } from "./routes/attestation.js";
import { auditRoutes } from "./routes/audit.js";
import { datakeyRoutes } from "./routes/datakeys.js";
import { drillRoutes } from "./routes/drills.js";
import { incidentRoutes } from "./routes/incidents.js";
import { inventoryRoutes } from "./routes/inventory.js";
import { keyRoutes } from "./routes/keys.js";
import { overviewRoutes } from "./routes/overview.js";
import { policyRoutes } from "./routes/policies.js";
import { principalRoutes } from "./routes/principals.js";
import { rootRoutes } from "./routes/root.js";

export async function protectedScope(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.addHook("onRequest", async (req) => {
    await authenticate(ctx, req);
  });

  // The one authorization call: after body validation, before any handler runs.
  app.addHook("preHandler", async (req) => {
    await authorize(ctx, req);
  });

  app.setErrorHandler((err, req, reply) =>
    auditedErrorReply(ctx, err, req, reply, {
      audits: true,
      serverErrors: true,
      resource: touchedResource(req),
    }),
  );

  for (const routes of [
    keyRoutes,
    datakeyRoutes,
    attestationRoutes,
    artifactRoutes,
    inventoryRoutes,
    auditRoutes,
    principalRoutes,
    approvalRoutes,
    policyRoutes,
    overviewRoutes,
    rootRoutes,
    incidentRoutes,
    drillRoutes,
  ])
    await app.register(routes, ctx);
}

/**
 * Who is calling: the first authenticator that answers decides (a denial is 401); a principal
 * blocked by anomaly detection is refused (403), and the request is observed for anomalies.
 * Sets `req.principal`; also the console's sign-in (console/routes.ts) goes through here.
 */
export async function authenticate(ctx: ServiceContext, req: FastifyRequest): Promise<void> {
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
  // Anomaly detection: a blocked principal is refused on every route (the error handler
  // audits it); a reload of the blocked set that fails refuses too (fail closed).
  if (await ctx.blocks.isBlocked(req.principal.id)) {
    ctx.metrics.blockedRequest();
    deny(
      403,
      "blocked by anomaly detection: an admin must unblock this principal (POST /v1/principals/ID/unblock)",
    );
  }
  await ctx.anomaly?.observe(req);
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
  await decide(ctx, req, spec.action, spec.resources(req), extra);
}

/**
 * Decides one more action for an authorized request (dual control: the gated operation's own
 * action for the requester and each approver). Denial throws 403; the decision is recorded on
 * the request for its audit entry.
 */
export async function authorizeAction(
  ctx: ServiceContext,
  req: FastifyRequest,
  action: string,
  resources: RouteResource[],
): Promise<void> {
  await decide(ctx, req, action, resources, {});
}

/**
 * Whether the policies would permit `action` on `resources` for this request, without denying
 * it or changing its recorded decision: for optional parts of an answer (the inventory's keys).
 */
export async function permits(
  ctx: ServiceContext,
  req: FastifyRequest,
  action: string,
  resources: RouteResource[],
): Promise<boolean> {
  const base = requestFor(req, action);
  const { authorizer } = await ctx.policies.active();
  for (const r of resources) {
    const d = authorizer.authorize({ ...base, resources: [await resolveResource(ctx, r)] });
    if (d.decision === "deny") return false;
  }
  return true;
}

/**
 * One policy snapshot per decision (a policy change elsewhere never splits a request's
 * evaluation); the resources in order, each resolved just before its decision, so a denied
 * Service check looks nothing up. Permits add up across the decisions of one request.
 */
async function decide(
  ctx: ServiceContext,
  req: FastifyRequest,
  action: string,
  resources: RouteResource[],
  extra: Record<string, unknown>,
): Promise<void> {
  const base = requestFor(req, action, extra);
  const { authorizer } = await ctx.policies.active();
  const permits = new Set<string>(req.authz?.decision === "allow" ? req.authz.policies : []);
  let d: Decision | null = null;
  for (const r of resources) {
    const resolved = await resolveResource(ctx, r);
    touch(req, resolved);
    d = authorizer.authorize({ ...base, resources: [resolved] });
    if (d.decision === "deny") break;
    for (const id of d.policies) permits.add(id);
  }
  if (d === null) d = authorizer.authorize({ ...base, resources: [] });
  if (d.decision === "deny") {
    req.authz = { decision: "deny", policies: d.policies };
    deny(403, d.reason);
  }
  for (const id of d.policies) permits.add(id);
  req.authz = { decision: "allow", policies: [...permits].sort() };
}

/** Remembers the keys and artifacts a decision covers, for the request's audit entry. */
function touch(req: FastifyRequest, r: AuthzResource): void {
  req.touched ??= { keys: new Set(), artifacts: new Set(), stanzaArtifacts: new Set() };
  const t = req.touched;
  if (r.type === "Key") {
    t.keys.add(r.name);
    if (r.artifact) {
      t.artifacts.add(r.artifact.id);
      t.stanzaArtifacts.add(r.artifact.id);
    }
  } else if (r.type === "Artifact") {
    t.keys.add(r.key.name);
    t.artifacts.add(r.id);
  }
}

/** What a refused request was about, or undefined (refused before any decision). */
function touchedResource(req: FastifyRequest): Record<string, unknown> | undefined {
  const t = req.touched;
  if (!t || (t.keys.size === 0 && t.artifacts.size === 0)) return undefined;
  return { keys: [...t.keys].sort(), artifacts: [...t.artifacts].sort() };
}

/** The Cedar request of an authenticated request, without resources (see `decide`). */
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
      ...(req.clientCert ? { clientCert: req.clientCert } : {}),
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
  // An unwrap or rewrap of a registered stanza names its artifact, so the audit can answer
  // "who opened this model" (audit query --artifact).
  const artifacts = req.touched?.stanzaArtifacts.size
    ? { artifacts: [...req.touched.stanzaArtifacts].sort() }
    : {};
  try {
    await ctx.audit.append(
      recordFor(req, "allowed", 200, { resource: { ...resource, ...artifacts } }),
    );
  } catch (e) {
    // No second entry from the error handler: when the connection died during COMMIT this one
    // may have landed, and a request id must not appear twice in the chain.
    req.audited = true;
    req.log.error({ err: loggableError(e) }, "audit write failed: nothing released");
    throw new ServiceError(
      503,
      "audit_unavailable",
      "the audit log is unavailable: nothing was released",
    );
  }
  req.audited = true;
  // Counted only once the release is on record; never fails the request.
  await ctx.anomaly?.released(req, resource);
}
