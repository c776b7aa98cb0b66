/** Unauthenticated routes: health, readiness (checks the database), metrics, OpenAPI, info. */
import type { FastifyInstance } from "fastify";
import { sql } from "kysely";
import type { ServiceContext } from "../context.js";
import { errorResponses } from "../schemas.js";

const status = {
  type: "object",
  required: ["status"],
  properties: { status: { type: "string" } },
} as const;

export async function publicRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get(
    "/healthz",
    { schema: { summary: "Liveness", response: { 200: status, ...errorResponses } } },
    async () => ({
      status: "ok",
    }),
  );

  app.get(
    "/readyz",
    {
      schema: {
        summary: "Readiness: the database answers",
        response: { 200: status, 503: status, ...errorResponses },
      },
    },
    async (req, reply) => {
      try {
        await sql`select 1`.execute(ctx.db.db);
        return { status: "ready" };
      } catch (e) {
        req.log.warn({ err: e }, "database not ready");
        return reply.code(503).send({ status: "database unavailable" });
      }
    },
  );

  app.get(
    "/metrics",
    {
      schema: {
        summary: "Prometheus metrics (text format 0.0.4)",
        produces: ["text/plain"],
        response: { 200: { type: "string" } },
      },
    },
    async (_req, reply) =>
      reply.type("text/plain; version=0.0.4").send(ctx.metrics.render(ctx.audit.stats)),
  );

  app.get(
    "/v1/info",
    {
      schema: {
        summary: "The server id this service stamps into service stanzas",
        response: {
          200: {
            type: "object",
            required: ["serverId"],
            properties: { serverId: { type: "string" } },
          },
        },
      },
    },
    async () => ({ serverId: ctx.serverId }),
  );

  app.get(
    "/openapi.json",
    {
      schema: {
        summary: "This OpenAPI 3 document",
        response: { 200: { type: "object", additionalProperties: true } },
      },
    },
    async () => app.swagger(),
  );
}
