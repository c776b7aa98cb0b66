/**
 * Audit query API (Cedar `audit:read` on the service; default policy: admin or audit): the
 * chained entries in sequence order, paged by `since`, and the signed checkpoints. Entries are
 * returned exactly as the chain hashes them (the stored canonical JSON, parsed) plus their hash,
 * so a client can recompute SHA-256(canonical(entry without hash)) and follow `prev`. They hold
 * no secrets by construction (AuditRecord: no token, file key or stanza; an unknown token is an
 * HMAC fingerprint). `canonical=true` adds the stored text, for byte-exact remote verification.
 * Each read is itself audited, after the rows are read.
 */
import type { FastifyInstance } from "fastify";
import { ARTIFACT_ID_PATTERN } from "../artifacts/repo.js";
import { type AuditFilter, queryAuditPage } from "../audit/index-store.js";
import { ISO_TIME_PATTERN, isoTime } from "../audit/iso-time.js";
import { readAuditPage } from "../audit/store.js";
import type { ServiceContext } from "../context.js";
import { ServiceError } from "../errors.js";
import { KEY_NAME_PATTERN } from "../keys/service.js";
import { release } from "../protected.js";
import { errorResponses } from "../schemas.js";

const security = [{ bearer: [] }];

export const AUDIT_PAGE_MAX = 1000;

// Query strings are not coerced (coerceTypes: false): decimal strings.
const limitSchema = {
  type: "string",
  pattern: "^([1-9][0-9]{0,2}|1000)$",
  description: `1..${AUDIT_PAGE_MAX}, default 100`,
} as const;

export const auditEntrySchema = {
  type: "object",
  required: [
    "v",
    "seq",
    "prev",
    "ts",
    "action",
    "outcome",
    "status",
    "principal",
    "source",
    "requestId",
    "hash",
  ],
  // The canonical fields are listed; any a later entry version adds are passed through as well.
  additionalProperties: true,
  properties: {
    v: { type: "integer" },
    seq: { type: "integer" },
    prev: { type: "string" },
    ts: { type: "string" },
    action: { type: "string" },
    outcome: { type: "string", enum: ["allowed", "denied", "error", "alert"] },
    status: { type: "integer" },
    principal: { type: ["string", "null"] },
    source: { type: "string" },
    requestId: { type: "string" },
    resource: { type: "object", additionalProperties: true },
    reason: { type: "string" },
    authz: {
      type: "object",
      required: ["decision", "policies"],
      properties: {
        decision: { type: "string", enum: ["allow", "deny"] },
        policies: { type: "array", items: { type: "string" } },
      },
    },
    hash: {
      type: "string",
      description: "hex SHA-256 of the canonical entry (without hash and canonical)",
    },
    canonical: {
      type: "string",
      description: "with ?canonical=true: the stored canonical text, the exact bytes hashed",
    },
  },
} as const;

const checkpointSchema = {
  type: "object",
  required: ["seq", "hash", "signature", "ts"],
  properties: {
    seq: { type: "integer" },
    hash: { type: "string", description: "hash of entry seq (the chain head when signed)" },
    signature: { type: "string", description: "Ed25519, base64" },
    ts: { type: "string" },
  },
} as const;

/**
 * Filters on the indexed fields (audit/index-fields.ts): exact matches, and a time range
 * `from` <= ts < `until` (ISO 8601, normalised to the stored form).
 */
const filterSchema = {
  key: { type: "string", pattern: KEY_NAME_PATTERN, description: "entries naming this key" },
  artifact: {
    type: "string",
    pattern: ARTIFACT_ID_PATTERN,
    description: "entries naming this artifact (registrations, unwraps of its stanza)",
  },
  principal: { type: "string", minLength: 1, maxLength: 2100, description: "exact principal id" },
  action: {
    type: "string",
    pattern: "^[a-z][a-z0-9.-]{0,63}$",
    description: "e.g. datakeys.unwrap",
  },
  outcome: { type: "string", enum: ["allowed", "denied", "error", "alert"] },
  from: { type: "string", pattern: ISO_TIME_PATTERN, description: "entries at or after this time" },
  until: { type: "string", pattern: ISO_TIME_PATTERN, description: "entries before this time" },
} as const;

/** A time the pattern admits but the calendar does not (2026-02-31) is 422. */
function time(name: string, s: string): string {
  const t = isoTime(s);
  if (t === null) throw new ServiceError(422, "unprocessable", `${name} is not a calendar date`);
  return t;
}

function auditFilter(q: { [K in keyof AuditFilter]?: string }): AuditFilter {
  const f: { -readonly [K in keyof AuditFilter]?: string } = {};
  for (const k of ["key", "artifact", "principal", "action", "outcome"] as const)
    if (q[k] !== undefined) f[k] = q[k];
  if (q.from !== undefined) f.from = time("from", q.from);
  if (q.until !== undefined) f.until = time("until", q.until);
  return f;
}

function parseLimit(s: string | undefined): number {
  const limit = s === undefined ? 100 : Number(s);
  if (limit > AUDIT_PAGE_MAX)
    throw new ServiceError(400, "bad_request", `limit must be 1..${AUDIT_PAGE_MAX}`);
  return limit;
}

export async function auditRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  type EntriesQuery = {
    since?: string;
    limit?: string;
    canonical?: "true" | "false";
  } & { [K in keyof AuditFilter]?: string };
  app.get<{ Querystring: EntriesQuery }>(
    "/v1/audit",
    {
      config: {
        action: "audit.read",
        scope: "audit",
        authz: { action: "audit:read", resources: () => ["service"] },
      },
      schema: {
        summary:
          "Audit entries with seq > since in sequence order (canonical fields + hash); page with nextSince",
        security,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            since: {
              type: "string",
              pattern: "^(0|[1-9][0-9]{0,14})$",
              description: "entries after this seq (default 0)",
            },
            limit: limitSchema,
            canonical: {
              type: "string",
              enum: ["true", "false"],
              description: "true: each entry also carries its stored canonical text",
            },
            ...filterSchema,
          },
        },
        response: {
          200: {
            type: "object",
            required: ["entries", "nextSince", "more"],
            properties: {
              entries: { type: "array", items: auditEntrySchema },
              nextSince: {
                type: "integer",
                description: "seq of the last entry returned (since if none): the next since",
              },
              more: { type: "boolean", description: "entries after this page existed when read" },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const since = req.query.since === undefined ? 0 : Number(req.query.since);
      const limit = parseLimit(req.query.limit);
      const filter = auditFilter(req.query);
      const rows =
        Object.keys(filter).length > 0
          ? await queryAuditPage(ctx.db, filter, since, limit + 1)
          : await readAuditPage(ctx.db, since, limit + 1);
      const more = rows.length > limit;
      const page = rows.slice(0, limit);
      // The parsed fields pass through the response serializer, which coerces to the schema's
      // types and drops unknown nested fields: only the stored text proves the exact bytes.
      const withText = req.query.canonical === "true";
      const entries = page.map((r) => ({
        ...(JSON.parse(r.entry) as Record<string, unknown>),
        hash: r.hash,
        ...(withText ? { canonical: r.entry } : {}),
      }));
      const nextSince = page.length > 0 ? Number(page[page.length - 1]?.seq) : since;
      // Who searched for what is part of the record (names and times only, no secrets).
      const asked = Object.keys(filter).length > 0 ? { filter } : {};
      await release(ctx, req, { since, count: entries.length, ...asked });
      return { entries, nextSince, more };
    },
  );

  app.get<{ Querystring: { limit?: string; before?: string } }>(
    "/v1/audit/checkpoints",
    {
      config: {
        action: "audit.checkpoints",
        scope: "audit",
        authz: { action: "audit:read", resources: () => ["service"] },
      },
      schema: {
        summary:
          "Signed checkpoints, newest first (page with before=nextBefore), with the server id and the Ed25519 public key",
        description:
          'Each signature is Ed25519 over the canonical JSON {"hash":…,"seq":…,"server":…,"type":"tensorseal-audit-checkpoint"} (keys sorted, no whitespace).',
        security,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            limit: limitSchema,
            before: {
              type: "string",
              pattern: "^[1-9][0-9]{0,14}$",
              description: "only checkpoints with seq < before (page with nextBefore)",
            },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["server", "publicKey", "checkpoints", "nextBefore", "more", "every"],
            properties: {
              server: { type: "string" },
              publicKey: { type: "string", description: "raw 32-byte Ed25519 key, base64" },
              checkpoints: { type: "array", items: checkpointSchema },
              nextBefore: {
                type: "integer",
                description: "seq of the oldest checkpoint returned (before, or 0, if none)",
              },
              more: { type: "boolean", description: "older checkpoints existed when read" },
              every: {
                type: "integer",
                description:
                  "the server's setting: it signs a checkpoint at every multiple of this seq (information: verifiers use their own --checkpoint-every)",
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const limit = parseLimit(req.query.limit);
      const before = req.query.before === undefined ? undefined : Number(req.query.before);
      // Newest first, paged downwards: checkpoints signed meanwhile never shift a page.
      let q = ctx.db.db.selectFrom("checkpoints").selectAll();
      if (before !== undefined) q = q.where("seq", "<", before);
      const rows = await q
        .orderBy("seq", "desc")
        .limit(limit + 1)
        .execute();
      const more = rows.length > limit;
      const checkpoints = rows.slice(0, limit).map((r) => ({
        seq: Number(r.seq),
        hash: r.hash,
        signature: r.signature,
        ts: r.ts,
      }));
      await release(ctx, req, {
        ...(before !== undefined ? { before } : {}),
        count: checkpoints.length,
      });
      return {
        server: app.tensorseal.serverId,
        publicKey: app.tensorseal.auditPublicKey,
        checkpoints,
        nextBefore: checkpoints.at(-1)?.seq ?? before ?? 0,
        more,
        every: app.tensorseal.checkpointEvery,
      };
    },
  );
}
