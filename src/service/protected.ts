/**
 * The protected scope: authentication as an onRequest hook registered only here (public routes
 * never see it), the route's scope check, and an error handler that writes the audit entry of
 * every refused or failed request before answering. Successful routes write theirs through
 * `release`, before the response, so no key leaves without a durable audit entry.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { recordFor, type ServiceContext } from "./context.js";
import { deny, publicError, ServiceError } from "./errors.js";
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
    const scope = req.routeOptions.config.scope;
    if (scope && !req.principal.roles.includes(scope))
      deny(403, `the token lacks the ${scope} scope`);
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
