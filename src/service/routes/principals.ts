/**
 * Principals blocked by anomaly auto-block or by a responder (`incident contain`): list them,
 * block one, unblock one (admin by default: Cedar actions `principals:read`, `principals:block`
 * and `principals:unblock` on the Service). The principal id
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

  app.post<{ Params: { id: string }; Body: { reason?: string } }>(
    "/v1/principals/:id/block",
    {
      config: {
        action: "principals.block",
        authz: { action: "principals:block", resources: () => ["service"] },
      },
      schema: {
        summary:
          "Block a principal (incident containment): its requests are refused on every replica within the block cache window",
        security,
        params: {
          type: "object",
          required: ["id"],
          properties: { id: { type: "string", minLength: 1, maxLength: PRINCIPAL_ID_MAX_LENGTH } },
        },
        body: {
          type: "object",
          additionalProperties: false,
          properties: { reason: { type: "string", minLength: 1, maxLength: 500 } },
        },
        response: {
          200: {
            type: "object",
            required: ["principal", "blocked"],
            properties: { principal: { type: "string" }, blocked: { type: "boolean" } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const id = req.params.id;
      if (id === req.principal?.id)
        throw new ServiceError(409, "conflict", "a principal cannot block itself");
      const reason = req.body?.reason ?? "blocked by an administrator";
      // On record first, like every change: no audit entry, no block. Idempotent.
      await release(ctx, req, { principal: id, reason });
      await ctx.blocks.block(id, reason);
      return { principal: id, blocked: true };
    },
  );
}
