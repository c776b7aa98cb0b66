/**
 * `POST /v1/root/shares/verify`: a test recovery of the service root (Cedar `root:verify-shares`
 * on the Service; admin by default). The custodians' share files are sent as text, combined in
 * memory and checked against the running root's check value (constant time), then wiped — as
 * Vault's unseal and rekey-verify take key shares over its API. The answer is yes or no; the
 * audit entry `root.shares-verified` (allowed, or error with the reason) names the split and
 * the share indices, never a share. The overview's `root.shares-untested` finding reads it.
 *
 * The request body is a JavaScript string the runtime cannot zero; it is never logged or
 * audited, and the share bytes decoded from it are zeroed (root-shares.ts).
 */
import type { FastifyInstance } from "fastify";
import type { ShareEvent } from "../../doctor/check-service-shares.js";
import { isTensorSealError } from "../../format/errors.js";
import { recordFor, type ServiceContext } from "../context.js";
import { ServiceError } from "../errors.js";
import { release } from "../protected.js";
import { rehearseServiceRoot, type ShareRehearsal } from "../root-shares.js";
import { errorResponses } from "../schemas.js";

const security = [{ bearer: [] }];
export const ROOT_SHARES_VERIFIED = "root.shares-verified";

export async function rootRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.post<{ Body: { shares: string[] } }>(
    "/v1/root/shares/verify",
    {
      config: {
        action: ROOT_SHARES_VERIFIED,
        authz: { action: "root:verify-shares", resources: () => ["service"] },
      },
      schema: {
        summary:
          "Test-recover the service root from share files (`service root split`): checks in memory that they rebuild the running root, audits the outcome (split and share indices, never a share)",
        security,
        body: {
          type: "object",
          required: ["shares"],
          additionalProperties: false,
          properties: {
            shares: {
              type: "array",
              minItems: 1,
              maxItems: 255,
              items: { type: "string", minLength: 1, maxLength: 2048 },
              description: "the text of each share file",
            },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["verified", "split", "shares", "threshold", "total"],
            properties: {
              verified: { type: "boolean", enum: [true] },
              split: { type: "string" },
              shares: { type: "array", items: { type: "integer" } },
              threshold: { type: "integer" },
              total: { type: "integer" },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const seen: ShareRehearsal = { split: null, shares: [], threshold: null, total: null };
      try {
        await rehearseServiceRoot(req.body.shares, ctx.rootCheck, seen);
      } catch (e) {
        if (!isTensorSealError(e)) throw e;
        // The failed rehearsal is the record doctor needs: audited here with what took part.
        await ctx.audit.append(
          recordFor(req, "error", 422, {
            resource: { result: "failed", ...seen },
            reason: e.message,
          }),
        );
        req.audited = true;
        throw new ServiceError(422, "unprocessable", e.message);
      }
      await release(ctx, req, { result: "recovered", ...seen });
      return {
        verified: true,
        split: seen.split as string,
        shares: seen.shares,
        threshold: seen.threshold as number,
        total: seen.total as number,
      };
    },
  );
}

/**
 * The newest test recoveries and starts from shares in the audit log, newest first (the
 * overview's root.shares-untested). Refused or malformed requests (no `result`) are not
 * rehearsals and are skipped.
 */
export async function shareEvents(ctx: ServiceContext, limit = 20): Promise<ShareEvent[]> {
  const rows = await ctx.db.db
    .selectFrom("audit")
    .select(["entry"])
    .where("action", "in", [ROOT_SHARES_VERIFIED, "root.recover"])
    .orderBy("seq", "desc")
    .limit(limit)
    .execute();
  const out: ShareEvent[] = [];
  for (const r of rows) {
    const e = JSON.parse(r.entry) as {
      ts: string;
      action: string;
      outcome: string;
      reason?: string;
      resource?: { result?: string; split?: unknown; shares?: unknown };
    };
    const res = e.resource ?? {};
    const split = typeof res.split === "string" ? res.split : null;
    const shares = Array.isArray(res.shares) ? res.shares.filter(Number.isInteger) : [];
    if (e.action === "root.recover" && e.outcome === "allowed")
      out.push({ at: e.ts, kind: "start", outcome: "recovered", split, shares });
    else if (
      e.action === ROOT_SHARES_VERIFIED &&
      res.result === "recovered" &&
      e.outcome === "allowed"
    )
      out.push({ at: e.ts, kind: "rehearsal", outcome: "recovered", split, shares });
    else if (e.action === ROOT_SHARES_VERIFIED && res.result === "failed")
      out.push({
        at: e.ts,
        kind: "rehearsal",
        outcome: "failed",
        split,
        shares,
        ...(e.reason ? { reason: e.reason } : {}),
      });
  }
  return out;
}
