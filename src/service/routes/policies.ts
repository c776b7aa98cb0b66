/**
 * The active Cedar policy set (`policies:read`, Service): its version (0 = the bootstrap set
 * from `serve --policy` or the built-in default), digest and text. Changing it is an approval
 * request with operation `policy` (routes/approvals.ts), never a direct write.
 */
import type { FastifyInstance } from "fastify";
import type { ServiceContext } from "../context.js";
import { release } from "../protected.js";
import { errorResponses } from "../schemas.js";

export async function policyRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get(
    "/v1/policies",
    {
      config: {
        action: "policies.read",
        scope: "admin",
        authz: { action: "policies:read", resources: () => ["service"] },
      },
      schema: {
        summary: "The active Cedar policy set: version, digest (SHA-256), source and text",
        security: [{ bearer: [] }],
        response: {
          200: {
            type: "object",
            required: ["version", "digest", "source", "policies", "text"],
            properties: {
              version: { type: "integer" },
              digest: { type: "string" },
              source: { type: "string" },
              policies: { type: "object", additionalProperties: { type: "string" } },
              text: { type: "string" },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { authorizer, version } = await ctx.policies.active();
      await release(ctx, req, { version, digest: authorizer.digest });
      const ids = Object.keys(authorizer.policies).sort();
      return {
        version,
        digest: authorizer.digest,
        source: authorizer.source,
        policies: authorizer.policies,
        text: ids.map((id) => authorizer.policies[id]).join("\n\n"),
      };
    },
  );
}
