/**
 * Principals blocked by anomaly auto-block: list them, and unblock one (admin by default:
 * Cedar actions `principals:read` and `principals:unblock` on the Service). The principal id
 * is a path segment: clients percent-encode it (ids hold ':' and may hold '/').
 */
import type { FastifyInstance } from "fastify";
import { PRINCIPAL_ID_MAX_LENGTH } from "../auth/principal.js";
import type { ServiceContext } from "../context.js";
import { ServiceError } from "../errors.js";
import { release } from "../protected.js";
import { errorResponses } from "../schemas.js";

const security = [{ bearer: [] }];

export async function principalRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get(
    "/v1/principals/blocked",
    {
      config: {
        action: "principals.blocked",
        authz: { action: "principals:read", resources: () => ["service"] },
      },
      schema: {
        summary: "Principals blocked by anomaly detection (oldest first)",
        security,
        response: {
          200: {
            type: "object",
            required: ["blocked"],
            properties: {
              blocked: {
                type: "array",
                items: {
                  type: "object",
                  required: ["principal", "since", "reason"],
                  properties: {
                    principal: { type: "string" },
                    since: { type: "string" },
                    reason: { type: "string" },
                  },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const blocked = await ctx.blocks.list();
      await release(ctx, req, { count: blocked.length });
      return { blocked };
    },
  );

  app.post<{ Params: { id: string } }>(
    "/v1/principals/:id/unblock",
    {
      config: {
        action: "principals.unblock",
        authz: { action: "principals:unblock", resources: () => ["service"] },
      },
      schema: {
        summary: "Lift an anomaly block: the principal's requests are served again",
        security,
        params: {
          type: "object",
          required: ["id"],
          properties: { id: { type: "string", minLength: 1, maxLength: PRINCIPAL_ID_MAX_LENGTH } },
        },
        // No body; an empty object is accepted (what the CLI sends), anything else refused.
        body: { type: "object", additionalProperties: false, properties: {} },
        response: {
          200: {
            type: "object",
            required: ["principal", "unblocked"],
            properties: { principal: { type: "string" }, unblocked: { type: "boolean" } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const id = req.params.id;
      if (!(await ctx.blocks.stored(id)))
        throw new ServiceError(404, "not_found", `principal ${JSON.stringify(id)} is not blocked`);
      // On record first, like every change: no audit entry, no unblock.
      await release(ctx, req, { principal: id });
      await ctx.blocks.unblock(id);
      ctx.anomaly?.unblocked(id);
      return { principal: id, unblocked: true };
    },
  );
}
