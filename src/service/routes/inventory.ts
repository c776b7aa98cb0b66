/**
 * `GET /v1/inventory`: the service's inventory in one paged answer — each registered artifact
 * (filterable by key and label, as `/v1/artifacts`) with its last release from the audit, and,
 * when the caller may also list keys (`keys:list`), every key with its versions, states,
 * rotation due date and how many registered artifacts are still on each version. Rows the
 * caller may not read are hidden, as in the artifact listing.
 */
import type { FastifyInstance } from "fastify";
import { artifactsPerVersion, lastReleases } from "../artifacts/inventory.js";
import type { ServiceContext } from "../context.js";
import { permits, release } from "../protected.js";
import { errorResponses } from "../schemas.js";
import {
  artifactSchema,
  type ListQuery,
  listQuery,
  listQuerySchema,
  readable,
} from "./artifacts.js";

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

export async function inventoryRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get<{ Querystring: ListQuery }>(
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
        querystring: listQuerySchema,
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
      const page = await ctx.artifacts.list(listQuery(q));
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
