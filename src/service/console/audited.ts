/**
 * The console routes' audit: the entry of an allowed sign-in or sign-out (before the session
 * changes, fail closed like `release`), and the error handler that audits a refused one as the
 * protected scope does (anonymous refusals within the source's budget, then summarised).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { recordFor, type ServiceContext } from "../context.js";
import { loggableError } from "../db/unavailable.js";
import { publicError } from "../errors.js";

/** The allowed request's audit entry (sign-in, sign-out); fail closed like `release`. */
export async function written(
  ctx: ServiceContext,
  req: FastifyRequest,
  resource: Record<string, unknown>,
): Promise<void> {
  req.audited = true;
  await ctx.audit.append(recordFor(req, "allowed", 200, { resource }));
}

/**
 * As the protected scope answers errors: a refused sign-in is audited (anonymous ones within
 * the source's budget, then summarised), and an audit that cannot be written answers 503.
 */
export async function auditedError(
  ctx: ServiceContext,
  err: unknown,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const pe = publicError(err, req.id);
  if (pe.status >= 500) req.log.error({ err: loggableError(err) }, "request failed");
  let status = pe.status;
  let body = { error: pe.code, message: pe.message };
  const audited = req.routeOptions.url?.startsWith("/console/") && !req.audited;
  if (audited && status === 401) {
    const single = ctx.refusals.admit(req.ip, pe.message);
    ctx.metrics.authRefusal(single);
    if (!single) req.audited = true;
  }
  if (audited && !req.audited && status < 500) {
    req.audited = true;
    const outcome = status === 401 || status === 403 ? "denied" : "error";
    try {
      await ctx.audit.append(recordFor(req, outcome, status, { reason: pe.message }));
    } catch (e) {
      req.log.error({ err: loggableError(e) }, "audit write failed");
      status = 503;
      body = {
        error: "audit_unavailable",
        message: "the audit log is unavailable: request refused",
      };
    }
  }
  return reply.code(status).send(body);
}
