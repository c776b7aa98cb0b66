/**
 * Incidents on the key service (the console's "open, follow and close an incident"): list and
 * show (Cedar `incidents:read`; default admin, audit, reader), open, add a timeline note, close
 * with a resolution (`incidents:open`, `incidents:note`, `incidents:close`; default admin), each
 * on the Service and each audited. The playbook itself (contain, assess, eradicate) stays with
 * `tensorseal incident`, which mirrors its incidents here when run with --server.
 */
import type { FastifyInstance } from "fastify";
import type { ServiceContext } from "../context.js";
import { ServiceError } from "../errors.js";
import type { OpenIncident } from "../incidents/repo.js";
import { release } from "../protected.js";
import { errorResponses } from "../schemas.js";

const security = [{ bearer: [] }];
const LIST_MAX = 200;

/** The responder's id (incident/store.ts): inc-YYYYMMDD-xxxxxxxx. */
export const INCIDENT_ID_PATTERN = "^inc-[0-9]{8}-[0-9a-f]{8}$";

const idParams = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", pattern: INCIDENT_ID_PATTERN } },
} as const;

/** src/incident/types.ts Scope. */
const scopeSchema = {
  type: "object",
  required: ["kind", "value"],
  additionalProperties: false,
  properties: {
    kind: { type: "string", enum: ["key", "principal", "endpoint", "artifact"] },
    value: { type: "string", minLength: 1, maxLength: 2048, pattern: "^[^\\u0000]+$" },
    version: { type: "integer", minimum: 1, maximum: 999_999_999 },
  },
} as const;

const severitySchema = { type: "string", enum: ["critical", "high", "medium"] } as const;

export const incidentSchema = {
  type: "object",
  required: ["id", "title", "severity", "state", "scope", "summary", "opened", "openedBy"],
  properties: {
    id: { type: "string" },
    title: { type: "string" },
    severity: severitySchema,
    state: { type: "string", enum: ["open", "closed"] },
    scope: { type: "array", items: scopeSchema },
    summary: { type: "string" },
    opened: { type: "string" },
    openedBy: { type: "string" },
    closed: { type: "string" },
    closedBy: { type: "string" },
    resolution: { type: "string" },
  },
} as const;

const noteSchema = {
  type: "object",
  required: ["id", "at", "author", "text"],
  properties: {
    id: { type: "string" },
    at: { type: "string" },
    author: { type: "string" },
    text: { type: "string" },
  },
} as const;

/**
 * Free text a person types: at least one visible character, and no NUL (which PostgreSQL text
 * cannot hold: refused as a bad request on both databases, never a 500 on one).
 */
const text = (max: number) => ({
  type: "string",
  minLength: 1,
  maxLength: max,
  pattern: "^[^\\u0000]*[^\\u0000\\s][^\\u0000]*$",
});

async function exists(ctx: ServiceContext, id: string, forChange: boolean) {
  const inc = await ctx.incidents.get(id);
  if (!inc) throw new ServiceError(404, "not_found", `no incident ${id}`);
  if (forChange && inc.state === "closed")
    throw new ServiceError(409, "conflict", `incident ${id} is closed`);
  return inc;
}

export async function incidentRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  const read = { action: "incidents:read", resources: () => ["service" as const] };

  app.get<{ Querystring: { state?: "open" | "closed"; limit?: string; cursor?: string } }>(
    "/v1/incidents",
    {
      config: { action: "incidents.list", authz: read },
      schema: {
        summary: "Incidents, newest first (paged)",
        security,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            state: { type: "string", enum: ["open", "closed"] },
            limit: {
              type: "string",
              pattern: "^([1-9][0-9]?|1[0-9]{2}|200)$",
              description: `1..${LIST_MAX}, default 50`,
            },
            cursor: { type: "string", pattern: "^[A-Za-z0-9_-]{1,256}$" },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["incidents"],
            properties: {
              incidents: { type: "array", items: incidentSchema },
              nextCursor: { type: "string" },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const q = req.query;
      const r = await ctx.incidents.list({
        ...(q.state ? { state: q.state } : {}),
        limit: q.limit === undefined ? 50 : Number(q.limit),
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
      });
      await release(ctx, req, { count: r.incidents.length });
      return { incidents: r.incidents, ...(r.next ? { nextCursor: r.next } : {}) };
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/incidents/:id",
    {
      config: { action: "incidents.show", authz: read },
      schema: {
        summary: "One incident and its timeline (notes, oldest first)",
        security,
        params: idParams,
        response: {
          200: {
            type: "object",
            required: ["incident", "notes"],
            properties: { incident: incidentSchema, notes: { type: "array", items: noteSchema } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const incident = await exists(ctx, req.params.id, false);
      const notes = await ctx.incidents.notes(incident.id);
      await release(ctx, req, { incident: incident.id });
      return { incident, notes };
    },
  );

  app.post<{ Body: OpenIncident }>(
    "/v1/incidents",
    {
      config: {
        action: "incidents.open",
        authz: { action: "incidents:open", resources: () => ["service"] },
      },
      schema: {
        summary: "Open an incident (title, severity, scope, summary)",
        security,
        body: {
          type: "object",
          required: ["title", "severity", "scope", "summary"],
          additionalProperties: false,
          properties: {
            id: {
              type: "string",
              pattern: INCIDENT_ID_PATTERN,
              description:
                "the responder's own id (tensorseal incident open --server); default new",
            },
            title: text(200),
            severity: severitySchema,
            scope: { type: "array", maxItems: 32, items: scopeSchema },
            summary: text(4000),
          },
        },
        response: { 200: incidentSchema, ...errorResponses },
      },
    },
    async (req) => {
      const b = req.body;
      if (b.id !== undefined && (await ctx.incidents.get(b.id)))
        throw new ServiceError(409, "conflict", `incident ${b.id} exists already`);
      const by = req.principal!.id;
      // On record first, like every change: no audit entry, no incident. The id is chosen
      // before, so the entry names it.
      const id = b.id ?? ctx.incidents.newId();
      await release(ctx, req, { incident: id, severity: b.severity });
      const inc = await ctx.incidents.open({ ...b, id }, by);
      if (!inc) throw new ServiceError(409, "conflict", `incident ${id} exists already`);
      return inc;
    },
  );

  app.post<{ Params: { id: string }; Body: { text: string } }>(
    "/v1/incidents/:id/notes",
    {
      config: {
        action: "incidents.note",
        authz: { action: "incidents:note", resources: () => ["service"] },
      },
      schema: {
        summary: "Add a note to an open incident's timeline",
        security,
        params: idParams,
        body: {
          type: "object",
          required: ["text"],
          additionalProperties: false,
          properties: { text: text(4000) },
        },
        response: { 200: noteSchema, ...errorResponses },
      },
    },
    async (req) => {
      const id = req.params.id;
      await exists(ctx, id, true);
      await release(ctx, req, { incident: id });
      const n = await ctx.incidents.note(id, req.body.text, req.principal!.id);
      if (n === "missing") throw new ServiceError(404, "not_found", `no incident ${id}`);
      if (n === "closed") throw new ServiceError(409, "conflict", `incident ${id} is closed`);
      return n;
    },
  );

  app.post<{ Params: { id: string }; Body: { resolution: string } }>(
    "/v1/incidents/:id/close",
    {
      config: {
        action: "incidents.close",
        authz: { action: "incidents:close", resources: () => ["service"] },
      },
      schema: {
        summary: "Close an open incident with its resolution",
        security,
        params: idParams,
        body: {
          type: "object",
          required: ["resolution"],
          additionalProperties: false,
          properties: { resolution: text(4000) },
        },
        response: { 200: incidentSchema, ...errorResponses },
      },
    },
    async (req) => {
      const id = req.params.id;
      await exists(ctx, id, true);
      await release(ctx, req, { incident: id });
      const r = await ctx.incidents.close(id, req.body.resolution, req.principal!.id);
      if (r === "missing") throw new ServiceError(404, "not_found", `no incident ${id}`);
      if (r === "closed") throw new ServiceError(409, "conflict", `incident ${id} is closed`);
      return r;
    },
  );
}
