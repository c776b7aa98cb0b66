/** KEK management: create (with labels and sensitivity), rotate, list, lifecycle, update (scope `admin`). */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ServiceContext } from "../context.js";
import { recordFor } from "../context.js";
import { loggableError } from "../db/unavailable.js";
import { ServiceError } from "../errors.js";
import type { VersionAction } from "../keys/service.js";
import { authorizeAction, release } from "../protected.js";
import {
  destroyDaysSchema,
  errorResponses,
  keyNameSchema,
  keySchema,
  labelsSchema,
  rotationPeriodSchema,
  sensitivitySchema,
  VERSION_PATTERN,
  versionSchema,
} from "../schemas.js";
import { actor, auditView } from "./approvals.js";

interface CreateBody {
  name: string;
  labels?: Record<string, string>;
  sensitivity?: string;
}

const security = [{ bearer: [] }];

export async function keyRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.post<{ Body: CreateBody }>(
    "/v1/keys",
    {
      config: {
        action: "keys.create",
        scope: "admin",
        // Decided on the key as requested, so a policy can limit who creates restricted keys.
        authz: {
          action: "keys:create",
          resources: (req) => {
            const b = req.body as CreateBody;
            const attrs = { labels: b.labels ?? {}, sensitivity: b.sensitivity ?? "unspecified" };
            return [{ key: b.name, attrs }];
          },
        },
      },
      schema: {
        summary: "Create a key-encryption key at version 1, with labels and a sensitivity",
        security,
        body: {
          type: "object",
          required: ["name"],
          additionalProperties: false,
          properties: { name: keyNameSchema, labels: labelsSchema, sensitivity: sensitivitySchema },
        },
        response: { 200: keySchema, ...errorResponses },
      },
    },
    async (req) => {
      const b = req.body;
      const k = await ctx.keys.create(b.name, {
        labels: b.labels ?? {},
        sensitivity: b.sensitivity ?? "unspecified",
      });
      await release(ctx, req, {
        key: k.name,
        version: 1,
        labels: k.labels,
        sensitivity: k.sensitivity,
      });
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
      await sweep(ctx);
      const keys = await ctx.keys.list();
      await release(ctx, req, { count: keys.length });
      return { keys };
    },
  );

  app.get<{ Params: { name: string } }>(
    "/v1/keys/:name",
    {
      config: {
        action: "keys.show",
        scope: "admin",
        // The same permission as the listing (which shows every key's metadata anyway).
        authz: { action: "keys:list", resources: () => ["service"] },
      },
      schema: {
        summary: "One key and its versions (metadata only), with its rotation period and due date",
        security,
        params: { type: "object", required: ["name"], properties: { name: keyNameSchema } },
        response: { 200: keySchema, ...errorResponses },
      },
    },
    async (req) => {
      await sweep(ctx);
      const k = await ctx.keys.show(req.params.name);
      await release(ctx, req, { key: k.name });
      return k;
    },
  );

  const versionParams = {
    type: "object",
    required: ["name", "v"],
    properties: { name: keyNameSchema, v: { type: "string", pattern: VERSION_PATTERN } },
  } as const;
  const lifecycle: { action: VersionAction; summary: string }[] = [
    { action: "disable", summary: "Disable a key version: it no longer unwraps (reversible)" },
    { action: "enable", summary: "Enable a disabled key version" },
    {
      action: "schedule-destroy",
      summary:
        "Schedule a version's destruction after `days` (default 7): it stops unwrapping now, and its sealed material is erased once the waiting period has passed",
    },
    {
      action: "cancel-destroy",
      summary: "Cancel a scheduled destruction; the version comes back disabled",
    },
  ];
  for (const { action, summary } of lifecycle) {
    type P = { Params: { name: string; v: string }; Body?: { days?: number } };
    app.post<P>(
      `/v1/keys/:name/versions/:v/${action}`,
      {
        config: {
          action: `keys.${action}`,
          scope: "admin",
          authz: {
            action: `keys:${action}`,
            resources: (req) => [{ key: (req.params as { name: string }).name }],
          },
        },
        schema: {
          summary,
          security,
          params: versionParams,
          // An empty body (or none); schedule-destroy takes `days`.
          body: {
            type: ["object", "null"],
            additionalProperties: false,
            properties: action === "schedule-destroy" ? { days: destroyDaysSchema } : {},
          },
          response: {
            200: {
              type: "object",
              required: ["key"],
              properties: { key: keySchema, destroyAfter: { type: "string" } },
            },
            // schedule-destroy under dual control: a pending approval request instead.
            202: {
              type: "object",
              required: ["approval", "state", "required", "approvers"],
              properties: {
                approval: { type: "string" },
                state: { type: "string" },
                required: { type: "integer" },
                approvers: { type: "array", items: { type: "string" } },
                message: { type: "string" },
              },
            },
            ...errorResponses,
          },
        },
      },
      async (req, reply) => {
        const version = Number(req.params.v);
        if (
          action === "schedule-destroy" &&
          (await ctx.approvals.requiredForRequest("destroy", { key: req.params.name })) > 1
        )
          return reply.code(202).send(await requestDestroy(ctx, req, version));
        await sweep(ctx);
        const r = await ctx.keys.changeVersion(
          req.params.name,
          version,
          action,
          req.body?.days ?? 7,
        );
        await release(ctx, req, {
          key: req.params.name,
          version,
          ...(r.destroyAfter ? { destroyAfter: r.destroyAfter } : {}),
        });
        return r;
      },
    );
  }

  app.patch<{
    Params: { name: string };
    Body: {
      minDecryptionVersion?: number;
      minEncryptionVersion?: number;
      labels?: Record<string, string>;
      sensitivity?: string;
      rotationPeriod?: number | null;
    };
  }>(
    "/v1/keys/:name",
    {
      config: {
        action: "keys.update",
        scope: "admin",
        // Decided on the key as it is now (a policy on its current sensitivity guards changes).
        authz: {
          action: "keys:update",
          resources: (req) => [{ key: (req.params as { name: string }).name }],
        },
      },
      schema: {
        summary:
          "Set a key's minimum decryption version (older versions stop unwrapping), minimum encryption version, labels (replaced as a whole), sensitivity and rotation period (seconds; null removes it)",
        security,
        params: { type: "object", required: ["name"], properties: { name: keyNameSchema } },
        body: {
          type: "object",
          additionalProperties: false,
          minProperties: 1,
          properties: {
            minDecryptionVersion: versionSchema,
            minEncryptionVersion: versionSchema,
            labels: labelsSchema,
            sensitivity: sensitivitySchema,
            rotationPeriod: rotationPeriodSchema,
          },
        },
        response: { 200: keySchema, ...errorResponses },
      },
    },
    async (req) => {
      const k = await ctx.keys.update(req.params.name, req.body);
      await release(ctx, req, {
        key: k.name,
        minDecryptionVersion: k.minDecryptionVersion,
        minEncryptionVersion: k.minEncryptionVersion,
        ...(req.body.labels !== undefined ? { labels: k.labels } : {}),
        ...(req.body.sensitivity !== undefined ? { sensitivity: k.sensitivity } : {}),
        ...(req.body.rotationPeriod !== undefined ? { rotationPeriod: k.rotationPeriod } : {}),
      });
      return k;
    },
  );

  app.post(
    "/v1/rotate-due",
    {
      config: {
        action: "keys.rotate-due",
        scope: "admin",
        // Finding the due keys is a listing; each rotation is then decided as keys:rotate.
        authz: { action: "keys:list", resources: () => ["service"] },
      },
      schema: {
        summary:
          "Rotate every key whose primary version has reached its rotation period (each decided and audited as keys:rotate)",
        security,
        body: { type: ["object", "null"], additionalProperties: false, properties: {} },
        response: {
          200: {
            type: "object",
            required: ["rotated"],
            properties: { rotated: { type: "array", items: { type: "string" } } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => ({ rotated: await rotateDue(ctx, req) }),
  );
}

/**
 * Rotates the due keys. Every rotation is authorised (keys:rotate on that key, as
 * `POST /v1/keys/:name/rotate`) before the first one runs, so a policy refusing one key
 * refuses the request with nothing rotated. Each rotation gets its own audit entry (action
 * keys.rotate, request id `<id>:<key>`) before the next starts; the request's own entry lists
 * the rotated names. A key rotated meanwhile (another replica's rotate-due at the same moment)
 * is left alone: the rotation is conditional on the primary found due, under the key's row lock.
 */
async function rotateDue(ctx: ServiceContext, req: FastifyRequest): Promise<string[]> {
  const due = await ctx.keys.rotationDue();
  for (const k of due) await authorizeAction(ctx, req, "keys:rotate", [{ key: k.name }]);
  const rotated: string[] = [];
  for (const k of due) {
    let r: Awaited<ReturnType<typeof ctx.keys.rotateFrom>>;
    try {
      // Only from the primary found due: a replica that rotated it meanwhile wins (one version).
      r = await ctx.keys.rotateFrom(k.name, k.primaryVersion);
    } catch (e) {
      // Deleted meanwhile (keys are never deleted today, but say so rather than fail the rest).
      if (e instanceof ServiceError && e.status === 404) continue;
      throw e;
    }
    if (r === null) continue;
    const entry = recordFor(req, "allowed", 200, {
      resource: { key: r.name, version: r.primaryVersion, due: k.rotationDue },
    });
    try {
      await ctx.audit.append({ ...entry, action: "keys.rotate", requestId: `${req.id}:${r.name}` });
    } catch (e) {
      req.log.error({ err: loggableError(e) }, "audit write failed after a rotation");
      throw new ServiceError(
        503,
        "audit_unavailable",
        `the audit log is unavailable: rotated ${[...rotated, r.name].join(", ")} before it failed`,
      );
    }
    rotated.push(r.name);
  }
  await release(ctx, req, { rotated });
  return rotated;
}

/**
 * Destruction under dual control: the request becomes a pending approval (operation `destroy`)
 * that executes when enough distinct principals approve it (POST /v1/approvals/:id/approve).
 */
async function requestDestroy(
  ctx: ServiceContext,
  req: FastifyRequest<{ Params: { name: string }; Body?: { days?: number } }>,
  version: number,
): Promise<Record<string, unknown>> {
  await authorizeAction(ctx, req, "approvals:request", ["service"]);
  const params = await ctx.approvals.prepare("destroy", {
    key: req.params.name,
    version,
    ...(req.body?.days !== undefined ? { days: req.body.days } : {}),
  });
  const v = await ctx.approvals.request("destroy", params, actor(req));
  await release(ctx, req, auditView(ctx, v));
  return {
    approval: v.id,
    state: v.state,
    required: v.required,
    approvers: v.approvers,
    message: `destruction needs ${v.required} approvals from distinct principals: POST /v1/approvals/${v.id}/approve`,
  };
}

/**
 * Destroys the versions whose waiting period has passed, each after its own audit entry
 * (principal `system:scheduler`). Runs on a timer and before key listings and lifecycle changes.
 */
export async function sweep(ctx: ServiceContext): Promise<void> {
  await ctx.keys.sweep((d) =>
    ctx.audit.append({
      action: "keys.destroy",
      outcome: "allowed",
      status: 200,
      principal: "system:scheduler",
      source: "server",
      requestId: `sweep-${ctx.keys.now()}`,
      resource: { key: d.key, version: d.version, erased: true },
    }),
  );
}
