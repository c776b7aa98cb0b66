/**
 * Drill history on the key service: `tensorseal drill run --server` records each scenario's
 * result (`drills:record`; default admin), the console lists them (`drills:read`; default
 * admin, audit, reader). Both on the Service, both audited. The body is the drill history line
 * (doctor/drill-history.ts), so the local history and the service's hold the same facts.
 */
import type { FastifyInstance } from "fastify";
import type { DrillRecord } from "../../doctor/drill-history.js";
import { ISO_TIME_PATTERN } from "../audit/iso-time.js";
import type { ServiceContext } from "../context.js";
import { release } from "../protected.js";
import { errorResponses } from "../schemas.js";

const security = [{ bearer: [] }];
const SCENARIO_PATTERN = "^[a-z0-9][a-z0-9-]{0,63}$";
/** No NUL: PostgreSQL text cannot hold it (a bad request on both databases, not a 500 on one). */
const NO_NUL = "^[^\\u0000]*$";
const msSchema = { type: ["number", "null"], minimum: 0, maximum: 1e12 } as const;

const drillFields = {
  scenario: { type: "string", pattern: SCENARIO_PATTERN },
  result: { type: "string", enum: ["pass", "fail"] },
  detectMs: msSchema,
  containMs: msSchema,
  durationMs: { type: "number", minimum: 0, maximum: 1e12 },
  time: { type: "string", pattern: ISO_TIME_PATTERN },
  version: { type: "string", minLength: 1, maxLength: 32, pattern: NO_NUL },
  database: { type: "string", enum: ["sqlite", "postgres"] },
  checks: {
    type: "object",
    required: ["passed", "total"],
    additionalProperties: false,
    properties: {
      passed: { type: "integer", minimum: 0, maximum: 10_000 },
      total: { type: "integer", minimum: 0, maximum: 10_000 },
    },
  },
  failed: {
    type: "array",
    maxItems: 1000,
    items: { type: "string", maxLength: 200, pattern: NO_NUL },
  },
  error: { type: "string", maxLength: 2000, pattern: NO_NUL },
} as const;

const required = [
  "scenario",
  "result",
  "detectMs",
  "containMs",
  "durationMs",
  "time",
  "version",
  "database",
  "checks",
  "failed",
] as const;

const drillSchema = {
  type: "object",
  required: [...required, "id", "recorded", "recordedBy"],
  properties: {
    ...drillFields,
    id: { type: "string" },
    recorded: { type: "string" },
    recordedBy: { type: "string" },
  },
} as const;

type DrillBody = { records: (Omit<DrillRecord, "format"> & { format?: string })[] };

export async function drillRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get<{ Querystring: { scenario?: string; limit?: string; cursor?: string } }>(
    "/v1/drills",
    {
      config: {
        action: "drills.list",
        authz: { action: "drills:read", resources: () => ["service"] },
      },
      schema: {
        summary: "Drill results recorded on this service, newest first (paged)",
        security,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            scenario: { type: "string", pattern: SCENARIO_PATTERN },
            limit: {
              type: "string",
              pattern: "^([1-9][0-9]?|1[0-9]{2}|200)$",
              description: "1..200, default 50",
            },
            cursor: { type: "string", pattern: "^drill-[0-9a-f]{16}$" },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["drills"],
            properties: {
              drills: { type: "array", items: drillSchema },
              nextCursor: { type: "string" },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const q = req.query;
      const r = await ctx.drills.list({
        ...(q.scenario !== undefined ? { scenario: q.scenario } : {}),
        limit: q.limit === undefined ? 50 : Number(q.limit),
        ...(q.cursor !== undefined ? { before: q.cursor } : {}),
      });
      await release(ctx, req, { count: r.drills.length });
      return { drills: r.drills, ...(r.next ? { nextCursor: r.next } : {}) };
    },
  );

  app.post<{ Body: DrillBody }>(
    "/v1/drills",
    {
      config: {
        action: "drills.record",
        authz: { action: "drills:record", resources: () => ["service"] },
      },
      schema: {
        summary: "Record drill results (what tensorseal drill run --server sends)",
        security,
        body: {
          type: "object",
          required: ["records"],
          additionalProperties: false,
          properties: {
            records: {
              type: "array",
              minItems: 1,
              maxItems: 100,
              items: {
                type: "object",
                required,
                additionalProperties: false,
                properties: { ...drillFields, format: { const: "tensorseal-drill/1" } },
              },
            },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["ids"],
            properties: { ids: { type: "array", items: { type: "string" } } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const records = req.body.records.map(({ format: _f, ...r }) => r);
      // On record first: no audit entry, no drill result.
      await release(ctx, req, {
        drills: records.map((r) => `${r.scenario}:${r.result}`),
      });
      return { ids: await ctx.drills.record(records, req.principal!.id) };
    },
  );
}
