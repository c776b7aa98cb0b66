/**
 * `GET /v1/inventory`: the service's inventory in one paged answer — each registered artifact
 * (filterable by key and label, as `/v1/artifacts`) with its last release from the audit, and,
 * when the caller may also list keys (`keys:list`), every key with its versions, states,
 * rotation due date and how many registered artifacts are still on each version. Rows the
 * caller may not read are hidden, as in the artifact listing.
 */
import type { FastifyInstance } from "fastify";
import { artifactsPerVersion, lastReleases } from "../artifacts/inventory.js";
import { decodeCursor, LIST_MAX } from "../artifacts/repo.js";
import type { ServiceContext } from "../context.js";
import { ServiceError } from "../errors.js";
import { permits, release } from "../protected.js";
import { errorResponses, keyNameSchema } from "../schemas.js";
import { artifactSchema, readable } from "./artifacts.js";

const inventoryKeySchema = {
  type: "object",
  required: ["name", "primaryVersion", "rotationDue", "versions"],
  properties: {
    name: { type: "string" },
    primaryVersion: { type: "integer" },
    minDecryptionVersion: { type: "integer" },
    rotationPeriod: { type: ["integer", "null"] },
    rotationDue: { type: ["string", "null"] },
    sensitivity: { type: "string" },
    versions: {
      type: "array",
      items: {
        type: "object",
        required: ["version", "state", "artifacts"],
        properties: {
          version: { type: "integer" },
          state: { type: "string" },
          created: { type: "string" },
          artifacts: { type: "integer", description: "registered artifacts on this version" },
        },
      },
    },
  },
} as const;

const releaseSchema = {
  type: ["object", "null"],
  required: ["seq"],
  properties: {
    seq: { type: "integer" },
    ts: { type: ["string", "null"] },
    principal: { type: ["string", "null"] },
  },
} as const;

type Query = { key?: string; label?: string; limit?: string; cursor?: string };

export async function inventoryRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get<{ Querystring: Query }>(
    "/v1/inventory",
    {
      config: {
        action: "inventory.read",
        scope: "admin",
        authz: { action: "artifacts:read", resources: () => ["service"] },
      },
      schema: {
        summary:
          "The inventory: registered artifacts (paged, by key and label) with their last release, and the keys with versions, rotation due dates and artifacts per version when the caller may list keys",
        security: [{ bearer: [] }],
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
            limit: {
              type: "string",
              pattern: "^([1-9][0-9]{0,2}|1000)$",
              description: "1..1000, default 100",
            },
            cursor: { type: "string", pattern: "^[A-Za-z0-9_-]{1,128}$" },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["generated", "artifacts"],
            properties: {
              generated: { type: "string" },
              keys: { type: "array", items: inventoryKeySchema },
              artifacts: {
                type: "array",
                items: {
                  ...artifactSchema,
                  properties: { ...artifactSchema.properties, lastRelease: releaseSchema },
                },
              },
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
      const eq = q.label?.indexOf("=") ?? -1;
      const page = await ctx.artifacts.list({
        ...(q.key !== undefined ? { key: q.key } : {}),
        ...(q.label !== undefined
          ? { label: { k: q.label.slice(0, eq), v: q.label.slice(eq + 1) } }
          : {}),
        limit,
        ...(q.cursor !== undefined ? { after: decodeCursor(q.cursor) } : {}),
      });
      const visible = await readable(ctx, req, page.artifacts);
      const released = await lastReleases(
        ctx.db,
        visible.map((a) => a.id),
      );
      const artifacts = visible.map((a) => ({ ...a, lastRelease: released.get(a.id) ?? null }));
      // The keys are an optional part: listed only for a caller who may list keys anyway.
      const withKeys = await permits(ctx, req, "keys:list", ["service"]);
      let keys: unknown[] | undefined;
      if (withKeys) {
        const perVersion = await artifactsPerVersion(ctx.db);
        keys = (await ctx.keys.list())
          .filter((k) => q.key === undefined || k.name === q.key)
          .map((k) => ({
            name: k.name,
            primaryVersion: k.primaryVersion,
            minDecryptionVersion: k.minDecryptionVersion,
            rotationPeriod: k.rotationPeriod,
            rotationDue: k.rotationDue,
            sensitivity: k.sensitivity,
            versions: k.versions.map((v) => ({
              version: v.version,
              state: v.state,
              created: v.created,
              artifacts: perVersion.get(`${k.name}\0${v.version}`) ?? 0,
            })),
          }));
      }
      await release(ctx, req, {
        count: artifacts.length,
        hidden: page.artifacts.length - artifacts.length,
        keys: keys ? keys.length : "not permitted",
      });
      return {
        generated: new Date(ctx.keys.now()).toISOString(),
        ...(keys ? { keys } : {}),
        artifacts,
        ...(page.next ? { nextCursor: page.next } : {}),
      };
    },
  );
}
