/**
 * How an audited scope answers an error (the protected routes, the console's sign-in and
 * sign-out): the refusal's audit entry is written before the answer (anonymous 401s within the
 * source's budget one by one, the rest counted for a summary entry), and an entry that cannot be
 * written turns the answer into 503: nothing is refused or failed without a trace.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { recordFor, type ServiceContext } from "./context.js";
import { loggableError } from "./db/unavailable.js";
import { publicError } from "./errors.js";

export interface AuditedErrorScope {
  /** Whether this request's error is audited here at all (the console: its own routes). */
  readonly audits: boolean;
  /** Also audit server errors (5xx), not only refusals. */
  readonly serverErrors: boolean;
  /** What the request touched, named in the entry. */
  readonly resource?: Record<string, unknown>;
}

export async function auditedErrorReply(
  ctx: ServiceContext,
  err: unknown,
  req: FastifyRequest,
  reply: FastifyReply,
  scope: AuditedErrorScope,
): Promise<FastifyReply> {
  const pe = publicError(err, req.id);
  if (pe.status >= 500) req.log.error({ err: loggableError(err) }, "request failed");
  let status = pe.status;
  let body = { error: pe.code, message: pe.message };
  const audits = scope.audits && !req.audited;
  // Anonymous refusals beyond the source's budget are counted for a summary entry instead.
  if (audits && status === 401) {
    const single = ctx.refusals.admit(req.ip, pe.message);
    ctx.metrics.authRefusal(single);
    if (!single) req.audited = true;
  }
  if (audits && !req.audited && (scope.serverErrors || status < 500)) {
    req.audited = true;
    const outcome = status === 401 || status === 403 ? "denied" : "error";
    const resource = scope.resource;
    try {
      await ctx.audit.append(
        recordFor(req, outcome, status, { reason: pe.message, ...(resource && { resource }) }),
      );
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
