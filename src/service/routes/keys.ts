/** KEK management: create, rotate, list (scope `admin`). */
import type { FastifyInstance } from "fastify";
import type { ServiceContext } from "../context.js";
import { release } from "../protected.js";
import { errorResponses, keyNameSchema, keySchema } from "../schemas.js";

const security = [{ bearer: [] }];

export async function keyRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.post<{ Body: { name: string } }>(
    "/v1/keys",
    {
      config: {
        action: "keys.create",
        scope: "admin",
        authz: {
          action: "keys:create",
          resources: (req) => [{ key: (req.body as { name: string }).name }],
        },
      },
      schema: {
        summary: "Create a key-encryption key at version 1",
        security,
        body: {
          type: "object",
          required: ["name"],
          additionalProperties: false,
          properties: { name: keyNameSchema },
        },
        response: { 200: keySchema, ...errorResponses },
      },
    },
    async (req) => {
      const k = await ctx.keys.create(req.body.name);
      await release(ctx, req, { key: k.name, version: 1 });
      return k;
    },
  );

  app.post<{ Params: { name: string } }>(
    "/v1/keys/:name/rotate",
    {
      config: {
        action: "keys.rotate",
        scope: "admin",
        authz: {
          action: "keys:rotate",
          resources: (req) => [{ key: (req.params as { name: string }).name }],
        },
      },
      schema: {
        summary: "Add a new version and make it primary (old versions still unwrap)",
        security,
        params: { type: "object", required: ["name"], properties: { name: keyNameSchema } },
        response: { 200: keySchema, ...errorResponses },
      },
    },
    async (req) => {
      const k = await ctx.keys.rotate(req.params.name);
      await release(ctx, req, { key: k.name, version: k.primaryVersion });
      return k;
    },
  );

  app.get(
    "/v1/keys",
    {
      config: {
        action: "keys.list",
        scope: "admin",
        authz: { action: "keys:list", resources: () => ["service"] },
      },
      schema: {
        summary: "List keys and their versions (metadata only)",
        security,
        response: {
          200: {
            type: "object",
            required: ["keys"],
            properties: { keys: { type: "array", items: keySchema } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const keys = await ctx.keys.list();
      await release(ctx, req, { count: keys.length });
      return { keys };
    },
  );
}
