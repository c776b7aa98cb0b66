/**
 * Artifact inventory: register (Cedar `artifacts:register` on the key the file is sealed under;
 * default policy: role wrap or writer), list and show (`artifacts:read` on the service; default:
 * admin or reader). Every request is audited like the key routes.
 */
import type { FastifyInstance } from "fastify";
import {
  ARTIFACT_ID_PATTERN,
  type Artifact,
  DIGEST_PATTERN,
  decodeCursor,
  LABEL_KEY_PATTERN,
  LIST_MAX,
} from "../artifacts/repo.js";
import type { ServiceContext } from "../context.js";
import { ServiceError } from "../errors.js";
import { release } from "../protected.js";
import { errorResponses, keyNameSchema } from "../schemas.js";

const security = [{ bearer: [] }];

const labelsSchema = {
  type: "object",
  maxProperties: 64,
  propertyNames: { pattern: LABEL_KEY_PATTERN },
  additionalProperties: { type: "string", maxLength: 512 },
} as const;

export const artifactSchema = {
  type: "object",
  required: ["id", "digest", "key", "version", "labels", "created"],
  properties: {
    id: { type: "string" },
    digest: { type: "string" },
    key: { type: "string" },
    version: { type: "integer" },
    labels: { type: "object", additionalProperties: { type: "string" } },
    location: { type: "string" },
    created: { type: "string" },
  },
} as const;

interface RegisterBody {
  id?: string;
  digest: string;
  key: string;
  version: number;
  labels?: Record<string, string>;
  location?: string;
}

export async function artifactRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.post<{ Body: RegisterBody }>(
    "/v1/artifacts",
    {
      config: {
        action: "artifacts.register",
        scope: "wrap",
        authz: {
          action: "artifacts:register",
          resources: (req) => [{ key: (req.body as RegisterBody).key }],
        },
      },
      schema: {
        summary:
          "Register a sealed artifact: id (or one is generated), plaintext SHA-256, key and version, labels, location",
        security,
        body: {
          type: "object",
          required: ["digest", "key", "version"],
          additionalProperties: false,
          properties: {
            id: { type: "string", pattern: ARTIFACT_ID_PATTERN },
            digest: { type: "string", pattern: DIGEST_PATTERN, description: "sha256:<hex>" },
            key: keyNameSchema,
            version: { type: "integer", minimum: 1 },
            labels: labelsSchema,
            location: { type: "string", minLength: 1, maxLength: 2048 },
          },
        },
        response: { 200: artifactSchema, ...errorResponses },
      },
    },
    async (req) => {
      const b = req.body;
      const k = await ctx.keys.show(b.key);
      if (!k.versions.some((v) => v.version === b.version))
        throw new ServiceError(400, "bad_request", `key ${b.key} has no version ${b.version}`);
      const a = await ctx.artifacts.register({
        ...(b.id !== undefined ? { id: b.id } : {}),
        digest: b.digest,
        key: b.key,
        version: b.version,
        labels: b.labels ?? {},
        ...(b.location !== undefined ? { location: b.location } : {}),
      });
      await release(ctx, req, { artifact: a.id, key: a.key, version: a.version });
      return a;
    },
  );

  type ListQuery = { key?: string; label?: string; limit?: string; cursor?: string };
  app.get<{ Querystring: ListQuery }>(
    "/v1/artifacts",
    {
      config: {
        action: "artifacts.list",
        scope: "admin",
        authz: { action: "artifacts:read", resources: () => ["service"] },
      },
      schema: {
        summary:
          "List artifacts (ordered by id), optionally by key and by one label k=v; paginated",
        security,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            key: keyNameSchema,
            label: {
              type: "string",
              pattern: "^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}=",
              maxLength: 700,
            },
            // Query strings are not coerced (coerceTypes: false): a decimal string, 1..LIST_MAX.
            limit: {
              type: "string",
              pattern: "^[1-9][0-9]{0,3}$",
              description: "1..1000, default 100",
            },
            cursor: { type: "string", pattern: "^[A-Za-z0-9_-]{1,128}$" },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["artifacts"],
            properties: {
              artifacts: { type: "array", items: artifactSchema },
              nextCursor: { type: "string" },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const q = req.query;
      const limit = q.limit === undefined ? 100 : Number(q.limit);
      if (limit > LIST_MAX)
        throw new ServiceError(400, "bad_request", `limit must be 1..${LIST_MAX}`);
      let label: { k: string; v: string } | undefined;
      if (q.label !== undefined) {
        const i = q.label.indexOf("=");
        label = { k: q.label.slice(0, i), v: q.label.slice(i + 1) };
      }
      const r = await ctx.artifacts.list({
        ...(q.key !== undefined ? { key: q.key } : {}),
        ...(label ? { label } : {}),
        limit,
        ...(q.cursor !== undefined ? { after: decodeCursor(q.cursor) } : {}),
      });
      await release(ctx, req, {
        count: r.artifacts.length,
        ...(q.key !== undefined ? { key: q.key } : {}),
        ...(q.label !== undefined ? { label: q.label } : {}),
      });
      return { artifacts: r.artifacts, ...(r.next ? { nextCursor: r.next } : {}) };
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/artifacts/:id",
    {
      config: {
        action: "artifacts.show",
        scope: "admin",
        authz: { action: "artifacts:read", resources: () => ["service"] },
      },
      schema: {
        summary: "One artifact",
        security,
        params: {
          type: "object",
          required: ["id"],
          properties: { id: { type: "string", pattern: ARTIFACT_ID_PATTERN } },
        },
        response: { 200: artifactSchema, ...errorResponses },
      },
    },
    async (req): Promise<Artifact> => {
      const a = await ctx.artifacts.show(req.params.id);
      await release(ctx, req, { artifact: a.id });
      return a;
    },
  );
}
