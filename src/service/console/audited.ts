/**
 * The console routes' audit: the entry of an allowed sign-in or sign-out (before the session
 * changes, fail closed like `release`), and the error handler that audits a refused one as the
 * protected scope does (anonymous refusals within the source's budget, then summarised).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { auditedErrorReply } from "../audited-error.js";
import { recordFor, type ServiceContext } from "../context.js";

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
  return auditedErrorReply(ctx, err, req, reply, {
    audits: req.routeOptions.url?.startsWith("/console/") === true,
    serverErrors: false,
  });
}
