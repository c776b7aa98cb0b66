/**
 * Dual control over the API: request, list, show, approve and reject. Route-level Cedar actions
 * are `approvals:request|read|approve` (on the Service); requesting, approving and rejecting
 * also need the gated operation's own action on its resource (e.g. `keys:schedule-destroy` on
 * the Key), checked for each principal in turn. Every step is one audit entry naming the
 * request id, the operation and its approvers (never policy text or export ciphertext).
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { MAX_CONTAIN_CERTS, MAX_CONTAIN_PRINCIPALS } from "../approvals/contain-op.js";
import type { OperationName } from "../approvals/operations.js";
import { OPERATIONS } from "../approvals/operations.js";
import type { Actor, ApprovalView } from "../approvals/service.js";
import type { ServiceContext } from "../context.js";
import { authorizeAction, release } from "../protected.js";
import { CUSTODY_PATTERN, MAX_CUSTODY } from "../root-custody.js";
import {
  destroyDaysSchema,
  errorResponses,
  keyNameSchema,
  versionSchema,
  x25519RecipientSchema,
} from "../schemas.js";

const security = [{ bearer: [] }];
const anyObject = { type: "object", additionalProperties: true } as const;

export const approvalSchema = {
  type: "object",
  required: ["id", "operation", "requester", "required", "approvers", "state", "expires"],
  properties: {
    id: { type: "string" },
    operation: { type: "string" },
    params: anyObject,
    requester: { type: "string" },
    required: { type: "integer" },
    approvers: { type: "array", items: { type: "string" } },
    state: {
      type: "string",
      enum: ["pending", "executing", "executed", "failed", "rejected", "expired"],
    },
    created: { type: "string" },
    expires: { type: "string" },
    updated: { type: "string" },
    outcome: anyObject,
    result: anyObject,
    resultAvailable: { type: "boolean" },
    executed: { type: "boolean" },
  },
} as const;

/** The body of `POST /v1/approvals` for each operation. */
const requestBody = {
  destroy: operationBody("destroy", ["key", "version"], {
    key: keyNameSchema,
    version: versionSchema,
    days: destroyDaysSchema,
  }),
  export: operationBody("export", ["key", "version", "recipient"], {
    key: keyNameSchema,
    version: versionSchema,
    recipient: x25519RecipientSchema,
  }),
  custody: operationBody("custody", ["custody"], {
    custody: { type: "string", minLength: 8, maxLength: MAX_CUSTODY, pattern: CUSTODY_PATTERN },
  }),
  contain: operationBody("contain", ["principals"], {
    principals: {
      type: "array",
      minItems: 1,
      maxItems: MAX_CONTAIN_PRINCIPALS,
      items: { type: "string", minLength: 1, maxLength: 2048 },
    },
    fingerprints: {
      type: "array",
      maxItems: MAX_CONTAIN_CERTS,
      // SHA-256 of the certificate's DER: 64 hex digits, or as openssl prints it (AB:CD:...).
      items: {
        type: "string",
        pattern: "^(?:[0-9A-Fa-f]{64}|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){31})$",
      },
    },
    reason: { type: "string", minLength: 1, maxLength: 500 },
  }),
  policy: operationBody("policy", ["files"], {
    files: {
      type: "object",
      minProperties: 1,
      maxProperties: 64,
      propertyNames: { pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$" },
      additionalProperties: { type: "string", maxLength: 1 << 20 },
    },
  }),
} as const;

function operationBody<P extends Record<string, unknown>>(
  operation: OperationName,
  required: readonly string[],
  properties: P,
) {
  return {
    type: "object",
    required: ["operation", ...required],
    additionalProperties: false,
    properties: { operation: { type: "string", const: operation }, ...properties },
  } as const;
}

const idParams = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", pattern: "^apr_[0-9a-f]{24}$" } },
} as const;

export function actor(req: FastifyRequest): Actor {
  return { principal: req.principal?.id ?? "", source: req.ip, requestId: req.id };
}

/** What an audit entry says about a request (ids and names only). */
export function auditView(ctx: ServiceContext, v: ApprovalView): Record<string, unknown> {
  const op = ctx.approvals.operation(v.operation);
  return {
    approval: v.id,
    operation: v.operation,
    ...op.summary(v.params),
    requester: v.requester,
    approvers: v.approvers,
    required: v.required,
    state: v.state,
  };
}

interface RequestBody {
  operation: OperationName;
  [param: string]: unknown;
}

export async function approvalRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.post<{ Body: RequestBody }>(
    "/v1/approvals",
    {
      config: {
        action: "approvals.request",
        scope: "admin",
        authz: { action: "approvals:request", resources: () => ["service"] },
      },
      schema: {
        summary:
          "Request an operation under dual control (destroy, export, policy, custody, contain); it executes once enough distinct principals approved",
        security,
        // One shape per operation, so the document says which fields each one takes.
        body: { oneOf: OPERATIONS.map((op) => requestBody[op]) },
        response: { 200: approvalSchema, 202: approvalSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const { operation } = req.body;
      const params = await ctx.approvals.prepare(operation, req.body, req.principal?.id);
      const op = ctx.approvals.operation(operation);
      await authorizeAction(ctx, req, op.action, op.resources(params));
      const v = await ctx.approvals.request(operation, params, actor(req));
      await release(ctx, req, auditView(ctx, v));
      return reply.code(v.state === "pending" ? 202 : 200).send(v);
    },
  );

  app.get<{ Querystring: { state?: string; limit?: string } }>(
    "/v1/approvals",
    {
      config: {
        action: "approvals.list",
        scope: "admin",
        authz: { action: "approvals:read", resources: () => ["service"] },
      },
      schema: {
        summary: "List approval requests, newest first (parameters summarised)",
        security,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            state: { type: "string", enum: approvalSchema.properties.state.enum },
            // Query strings are text: the only place a number is parsed from a string.
            limit: { type: "string", pattern: "^([1-9][0-9]{0,2}|1000)$" },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["approvals"],
            properties: { approvals: { type: "array", items: approvalSchema } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      await ctx.approvals.expireDue();
      const approvals = await ctx.approvals.list(req.query.state, Number(req.query.limit ?? 100));
      await release(ctx, req, {
        count: approvals.length,
        ...(req.query.state ? { state: req.query.state } : {}),
      });
      return { approvals };
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/approvals/:id",
    {
      config: {
        action: "approvals.show",
        scope: "admin",
        authz: { action: "approvals:read", resources: () => ["service"] },
      },
      schema: {
        summary:
          "One approval request with its full parameters; the requester receives a one-time result (export) once",
        security,
        params: idParams,
        response: { 200: approvalSchema, ...errorResponses },
      },
    },
    async (req) => {
      await ctx.approvals.expireDue();
      const v = await ctx.approvals.show(req.params.id, actor(req).principal, true);
      await release(ctx, req, { ...auditView(ctx, v), resultTaken: v.result !== undefined });
      return v;
    },
  );

  for (const vote of ["approve", "reject"] as const) {
    app.post<{ Params: { id: string }; Body: { comment?: string } | null }>(
      `/v1/approvals/:id/${vote}`,
      {
        config: {
          action: `approvals.${vote}`,
          scope: "admin",
          authz: { action: "approvals:approve", resources: () => ["service"] },
        },
        schema: {
          summary:
            vote === "approve"
              ? "Approve a pending request (distinct principals; the M-th approval executes it)"
              : "Reject a pending request: it will never execute",
          security,
          params: idParams,
          // An optional comment, kept in the vote's audit entry (the console sends it).
          body: {
            type: ["object", "null"],
            additionalProperties: false,
            properties: { comment: { type: "string", maxLength: 500 } },
          },
          response: { 200: approvalSchema, ...errorResponses },
        },
      },
      async (req) => {
        const current = await ctx.approvals.show(req.params.id, "", false);
        const op = ctx.approvals.operation(current.operation);
        // The approver must be allowed the gated operation itself, not only to approve.
        await authorizeAction(ctx, req, op.action, op.resources(current.params));
        const v =
          vote === "approve"
            ? await ctx.approvals.approve(req.params.id, actor(req))
            : await ctx.approvals.reject(req.params.id, actor(req));
        const comment = req.body?.comment;
        await release(ctx, req, {
          ...auditView(ctx, v),
          ...(v.outcome ? { outcome: v.outcome } : {}),
          ...(comment ? { comment } : {}),
        });
        return v;
      },
    );
  }
}
