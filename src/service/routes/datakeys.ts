/**
 * Data keys: wrap (a writer's file key), generate, unwrap, batch unwrap and server-side rewrap.
 * Every response that carries a file key is sent only after its audit entry is committed.
 */
import type { FastifyInstance } from "fastify";
import type { Stanza } from "../../format/stanza.js";
import {
  parseServiceStanza,
  SERVICE_STANZA,
  serviceStanzaDigest,
  stanzaFromWire,
  stanzaToWire,
  type WireStanza,
} from "../../keys/service/index.js";
import type { KeyResource, RouteResource } from "../auth/principal.js";
import type { ServiceContext } from "../context.js";
import { publicError, ServiceError } from "../errors.js";
import { release } from "../protected.js";
import { errorResponses, fileKeySchema, keyNameSchema, stanzaSchema } from "../schemas.js";

const security = [{ bearer: [] }];
const stanzaResult = {
  type: "object",
  required: ["stanza", "version"],
  properties: { stanza: stanzaSchema, version: { type: "integer" } },
} as const;

/**
 * The key a service stanza names (the Cedar resource), with the stanza's digest and version so
 * the artifact it was registered with becomes `context.artifact`; 422 for anything else.
 */
export function stanzaKey(w: WireStanza): KeyResource {
  const s = stanzaFromWire(w);
  if (s.type !== SERVICE_STANZA)
    throw new ServiceError(422, "unprocessable", "not a service stanza");
  const p = parseServiceStanza(s);
  return { key: p.name, stanza: { digest: serviceStanzaDigest(s), version: p.version } };
}

type Body<T> = { body: unknown } & { body: T };
const body = <T>(req: { body: unknown }): T => (req as Body<T>).body;

/** Seconds the client may keep the file key in its data-key cache (its key's tier; 0: never). */
const cacheMaxAgeSchema = { type: "integer", minimum: 0 } as const;

function decodeFileKey(b64: string): Buffer {
  return Buffer.from(b64, "base64");
}

export async function datakeyRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.post<{ Body: { key: string; fileKey: string } }>(
    "/v1/datakeys/wrap",
    {
      config: {
        action: "datakeys.wrap",
        scope: "wrap",
        authz: { action: "wrap", resources: (req) => [{ key: body<{ key: string }>(req).key }] },
      },
      schema: {
        summary: "Wrap a writer's file key under the primary version of a key (a service stanza)",
        security,
        body: {
          type: "object",
          required: ["key", "fileKey"],
          additionalProperties: false,
          properties: { key: keyNameSchema, fileKey: fileKeySchema },
        },
        response: { 200: stanzaResult, ...errorResponses },
      },
    },
    async (req) => {
      const fk = decodeFileKey(req.body.fileKey);
      try {
        const r = await ctx.keys.wrap(req.body.key, fk);
        await release(ctx, req, { key: req.body.key, version: r.version });
        return { stanza: stanzaToWire(r.stanza), version: r.version };
      } finally {
        fk.fill(0);
      }
    },
  );

  app.post<{ Body: { key: string } }>(
    "/v1/datakeys/generate",
    {
      config: {
        action: "datakeys.generate",
        scope: "wrap",
        authz: { action: "wrap", resources: (req) => [{ key: body<{ key: string }>(req).key }] },
      },
      schema: {
        summary: "Draw a new file key and return it with its service stanza",
        security,
        body: {
          type: "object",
          required: ["key"],
          additionalProperties: false,
          properties: { key: keyNameSchema },
        },
        response: {
          200: {
            type: "object",
            required: ["fileKey", "stanza", "version"],
            properties: {
              fileKey: fileKeySchema,
              stanza: stanzaSchema,
              version: { type: "integer" },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const r = await ctx.keys.generate(req.body.key);
      await release(ctx, req, { key: req.body.key, version: r.version });
      return {
        fileKey: r.fileKey.toString("base64"),
        stanza: stanzaToWire(r.stanza),
        version: r.version,
      };
    },
  );

  app.post<{ Body: { stanza: WireStanza } }>(
    "/v1/datakeys/unwrap",
    {
      config: {
        action: "datakeys.unwrap",
        scope: "unwrap",
        authz: {
          action: "unwrap",
          resources: (req) => [stanzaKey(body<{ stanza: WireStanza }>(req).stanza)],
        },
      },
      schema: {
        summary: "Unwrap the file key of a service stanza",
        security,
        body: {
          type: "object",
          required: ["stanza"],
          additionalProperties: false,
          properties: { stanza: stanzaSchema },
        },
        response: {
          200: {
            type: "object",
            required: ["fileKey"],
            properties: { fileKey: fileKeySchema, cacheMaxAge: cacheMaxAgeSchema },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const t0 = performance.now();
      try {
        const u = await ctx.keys.unwrap(stanzaFromWire(req.body.stanza));
        const ttl = await ctx.keys.plainRelease(u);
        await release(ctx, req, { key: u.name, version: u.version });
        ctx.metrics.unwrap("ok", 1, (performance.now() - t0) / 1000);
        return {
          fileKey: u.fileKey.toString("base64"),
          ...(ttl !== null ? { cacheMaxAge: ttl } : {}),
        };
      } catch (e) {
        ctx.metrics.unwrap("error", 1, (performance.now() - t0) / 1000);
        throw e;
      }
    },
  );

  app.post<{ Body: { stanzas: WireStanza[] } }>(
    "/v1/datakeys/unwrap-batch",
    {
      config: {
        action: "datakeys.unwrap-batch",
        scope: "unwrap",
        // Every distinct stanza key (with the stanza's artifact) must be allowed; stanzas that
        // do not parse are left to their per-item error.
        authz: {
          action: "unwrap",
          resources: (req) => batchKeys(body<{ stanzas: WireStanza[] }>(req).stanzas),
        },
      },
      schema: {
        summary: `Unwrap up to ${ctx.batchMax} service stanzas; each result is a file key or an error`,
        security,
        body: {
          type: "object",
          required: ["stanzas"],
          additionalProperties: false,
          properties: {
            stanzas: { type: "array", minItems: 1, maxItems: ctx.batchMax, items: stanzaSchema },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["results"],
            properties: {
              results: {
                type: "array",
                items: {
                  type: "object",
                  properties: {
                    fileKey: fileKeySchema,
                    cacheMaxAge: cacheMaxAgeSchema,
                    error: { type: "string" },
                    message: { type: "string" },
                  },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const t0 = performance.now();
      const results: {
        fileKey?: string;
        cacheMaxAge?: number;
        error?: string;
        message?: string;
      }[] = [];
      const items: { key?: string; version?: number; ok: boolean }[] = [];
      for (const w of req.body.stanzas) {
        let s: Stanza | null = null;
        try {
          s = stanzaFromWire(w);
          const u = await ctx.keys.unwrap(s);
          const ttl = await ctx.keys.plainRelease(u);
          results.push({
            fileKey: u.fileKey.toString("base64"),
            ...(ttl !== null ? { cacheMaxAge: ttl } : {}),
          });
          items.push({ key: u.name, version: u.version, ok: true });
        } catch (e) {
          const pe = publicError(e, req.id);
          if (pe.status >= 500) throw e;
          results.push({ error: pe.code, message: pe.message });
          items.push({ ok: false });
        }
      }
      const ok = items.filter((i) => i.ok).length;
      await release(ctx, req, { items, ok, failed: items.length - ok });
      const seconds = (performance.now() - t0) / 1000;
      ctx.metrics.unwrap("ok", ok, seconds);
      if (ok < items.length) ctx.metrics.unwrap("error", items.length - ok, 0);
      return { results };
    },
  );

  app.post<{ Body: { stanza: WireStanza; key?: string } }>(
    "/v1/datakeys/rewrap",
    {
      config: {
        action: "datakeys.rewrap",
        scope: "rewrap",
        // Both the source key and the target key must allow rewrap.
        authz: {
          action: "rewrap",
          resources: (req) => {
            const b = body<{ stanza: WireStanza; key?: string }>(req);
            const from = stanzaKey(b.stanza);
            return b.key ? [from, { key: b.key }] : [from];
          },
        },
      },
      schema: {
        summary:
          "Re-wrap a service stanza under the primary version of its key (or `key`); the file key never leaves the server",
        security,
        body: {
          type: "object",
          required: ["stanza"],
          additionalProperties: false,
          properties: { stanza: stanzaSchema, key: keyNameSchema },
        },
        response: { 200: stanzaResult, ...errorResponses },
      },
    },
    async (req) => {
      const r = await ctx.keys.rewrap(stanzaFromWire(req.body.stanza), req.body.key);
      await release(ctx, req, {
        from: { key: r.from.name, version: r.from.version },
        to: { key: req.body.key ?? r.from.name, version: r.version },
      });
      return { stanza: stanzaToWire(r.stanza), version: r.version };
    },
  );
}

/** One resource per distinct stanza key and digest (so each item's artifact is decided on). */
function batchKeys(stanzas: WireStanza[]): RouteResource[] {
  const out = new Map<string, RouteResource>();
  for (const w of stanzas) {
    try {
      const r = stanzaKey(w);
      out.set(`${r.key}\0${r.stanza?.digest}`, r);
    } catch {
      // reported per item by the handler
    }
  }
  if (out.size === 0)
    throw new ServiceError(422, "unprocessable", "no service stanza in the batch");
  return [...out.values()];
}
