/**
 * Artifact inventory: register (Cedar `artifacts:register` on the Artifact being registered,
 * labels from the request; default policy: role wrap or writer), show (`artifacts:read` on the
 * Service, then on that Artifact) and list (`artifacts:read` on the Service, then each row is
 * decided on its Artifact and hidden when denied; default: admin or reader). Every request is
 * audited like the key routes.
 */
import { timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { stanzaFromWire, type WireStanza } from "../../keys/service/index.js";
import {
  checkRegistrationTier,
  HEADER_MAX_BASE64,
  type RegisteredHeader,
  readRegisteredHeader,
} from "../artifacts/header.js";
import {
  ARTIFACT_ID_PATTERN,
  type Artifact,
  type ArtifactQuery,
  DIGEST_PATTERN,
  decodeCursor,
  LIST_MAX,
  newArtifactId,
  type StanzaArtifact,
} from "../artifacts/repo.js";
import type { KeyResource } from "../auth/principal.js";
import { artifactResource, keyAttrs } from "../authz/resolve.js";
import type { ServiceContext } from "../context.js";
import { ServiceError } from "../errors.js";
import { authorizeAction, release, requestFor } from "../protected.js";
import {
  errorResponses,
  keyNameSchema,
  labelsSchema,
  stanzaSchema,
  versionSchema,
} from "../schemas.js";
import { stanzaKey } from "./datakeys.js";

const security = [{ bearer: [] }];

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
    supersedes: { type: "string", description: "the artifact this one replaced (a reseal)" },
    supersededBy: {
      type: "string",
      description: "the newest artifact that replaced this one: its file was resealed",
    },
    superseded: { type: "string", description: "when it was superseded" },
    headerDigest: {
      type: "string",
      description: "sha256:<hex> of the header bytes the registration carried",
    },
  },
} as const;

/** `:id`, an artifact id. */
const artifactIdParams = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", pattern: ARTIFACT_ID_PATTERN } },
};

/** The two restanza routes' body: the registered stanza and the one a rewrap made of it. */
const restanzaBody = {
  type: "object",
  required: ["from", "to"],
  additionalProperties: false,
  properties: { from: stanzaSchema, to: stanzaSchema },
};

/** A file's header bytes, base64 (public metadata and wrapped file keys; no key, no plaintext). */
const headerSchema = {
  type: "string",
  pattern: "^[A-Za-z0-9+/]+={0,2}$",
  maxLength: HEADER_MAX_BASE64,
  description:
    "base64 of the sealed file's header bytes (prefix, descriptor, both slots: wrapped file keys and public labels only): the service checks its MAC under the registered stanza's file key and the recipient kinds against the tier",
} as const;

interface RegisterBody {
  id?: string;
  digest: string;
  key: string;
  version: number;
  labels?: Record<string, string>;
  location?: string;
  stanzaDigest?: string;
  header?: string;
}

interface SuccessorBody {
  from: WireStanza;
  header: string;
  location?: string;
}

/** The registry listing's query (`/v1/artifacts`, `/v1/inventory`): key, one label, paging. */
export type ListQuery = { key?: string; label?: string; limit?: string; cursor?: string };

export const listQuerySchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    key: keyNameSchema,
    label: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}=", maxLength: 700 },
    // Query strings are not coerced (coerceTypes: false): a decimal string, 1..LIST_MAX.
    limit: {
      type: "string",
      pattern: "^([1-9][0-9]{0,2}|1000)$",
      description: "1..1000, default 100",
    },
    cursor: { type: "string", pattern: "^[A-Za-z0-9_-]{1,128}$" },
  },
} as const;

export function listQuery(q: ListQuery): ArtifactQuery {
  const limit = q.limit === undefined ? 100 : Number(q.limit);
  if (limit > LIST_MAX) throw new ServiceError(400, "bad_request", `limit must be 1..${LIST_MAX}`);
  const eq = q.label?.indexOf("=") ?? -1;
  return {
    ...(q.key !== undefined ? { key: q.key } : {}),
    ...(q.label !== undefined
      ? { label: { k: q.label.slice(0, eq), v: q.label.slice(eq + 1) } }
      : {}),
    limit,
    ...(q.cursor !== undefined ? { after: decodeCursor(q.cursor) } : {}),
  };
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
          resources: (req) => {
            const b = req.body as RegisterBody;
            // The id is fixed before the decision, so the policy and the row see the same one.
            b.id ??= newArtifactId();
            const { id, key, version, digest } = b;
            return [{ artifact: { id, key, version, digest, labels: b.labels ?? {} } }];
          },
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
            version: versionSchema,
            labels: labelsSchema,
            location: { type: "string", minLength: 1, maxLength: 2048 },
            stanzaDigest: {
              type: "string",
              pattern: DIGEST_PATTERN,
              description:
                "sha256:<hex> of the wrapped file key of the service stanza sealed into the file: unwraps of that stanza are decided with this artifact",
            },
            header: headerSchema,
          },
        },
        response: { 200: artifactSchema, ...errorResponses },
      },
    },
    async (req) => {
      const b = req.body;
      const k = await ctx.keys.show(b.key);
      if (!k.versions.some((v) => v.version === b.version))
        throw new ServiceError(404, "not_found", `key ${b.key} has no version ${b.version}`);
      let h: RegisteredHeader | null = null;
      if (b.header !== undefined) {
        h = await readRegisteredHeader(ctx.keys, ctx.serverId, b.header, {
          key: b.key,
          ...(b.stanzaDigest !== undefined ? { stanzaDigest: b.stanzaDigest } : {}),
        });
        if (h.stanza.key !== b.key || h.stanza.version !== b.version)
          throw new ServiceError(
            422,
            "unprocessable",
            `header: its stanza is of ${h.stanza.key} v${h.stanza.version}, not ${b.key} v${b.version}`,
          );
        b.stanzaDigest ??= h.stanza.digest;
      }
      await checkRegistrationTier(ctx.keys, { key: b.key, labels: b.labels ?? {}, header: h });
      const a = await ctx.artifacts.register({
        ...(b.id !== undefined ? { id: b.id } : {}),
        digest: b.digest,
        key: b.key,
        version: b.version,
        labels: b.labels ?? {},
        ...(b.location !== undefined ? { location: b.location } : {}),
        ...(b.stanzaDigest !== undefined ? { stanzaDigest: b.stanzaDigest } : {}),
        ...(h ? { headerDigest: h.headerDigest } : {}),
      });
      if (b.stanzaDigest !== undefined) ctx.stanzaArtifacts.forget(b.stanzaDigest);
      await release(ctx, req, {
        artifact: a.id,
        key: a.key,
        version: a.version,
        ...(b.stanzaDigest !== undefined ? { stanza: b.stanzaDigest } : {}),
        ...(h ? { header: h.headerDigest, recipientKinds: [...new Set(h.kinds)] } : {}),
      });
      return a;
    },
  );

  app.post<{ Body: SuccessorBody }>(
    "/v1/artifacts/successors",
    {
      config: {
        action: "artifacts.succeed",
        scope: "wrap",
        // Whoever registers a reseal's result opened the old file: decided on its stanza (with
        // its artifact), then artifacts:register on the old and the new artifact (handler).
        authz: {
          action: "unwrap",
          resources: (req) => [stanzaKey((req.body as SuccessorBody).from)],
        },
      },
      schema: {
        summary:
          "Register a resealed file as the successor of the artifact registered with its old stanza (`from`): the new artifact (key, version and stanza from `header`) inherits digest and labels and names the old in `supersedes`; the old is marked superseded, not deleted",
        security,
        body: {
          type: "object",
          required: ["from", "header"],
          additionalProperties: false,
          properties: {
            from: stanzaSchema,
            header: headerSchema,
            location: { type: "string", minLength: 1, maxLength: 2048 },
          },
        },
        response: { 200: artifactSchema, ...errorResponses },
      },
    },
    async (req) => succeed(ctx, req),
  );

  app.post<{ Params: { id: string }; Body: { from: WireStanza; to: WireStanza } }>(
    "/v1/artifacts/:id/restanza",
    {
      config: {
        action: "artifacts.restanza",
        scope: "wrap",
        // Moving a registration is registering the artifact again (decided on it as it is).
        authz: {
          action: "artifacts:register",
          resources: (req) => [{ artifactId: (req.params as { id: string }).id }],
        },
      },
      schema: {
        summary:
          "Move an artifact's registration from its stanza (`from`) to the stanza a rewrap made of it (`to`): both must hold the same file key",
        security,
        params: artifactIdParams,
        body: restanzaBody,
        response: { 200: artifactSchema, ...errorResponses },
      },
    },
    async (req) => restanzaArtifact(ctx, req, req.params.id, req.body),
  );

  app.post<{ Body: { from: WireStanza; to: WireStanza } }>(
    "/v1/artifacts/restanza",
    {
      config: {
        action: "artifacts.restanza",
        scope: "wrap",
        // As the route by id, found by its registered stanza (a plain `rewrap` knows no id):
        // rewrap on both stanzas here, artifacts:register on the artifact found (handler).
        authz: {
          action: "rewrap",
          resources: (req) => {
            const b = req.body as { from: WireStanza; to: WireStanza };
            return [stanzaKey(b.from), stanzaKey(b.to)];
          },
        },
      },
      schema: {
        summary:
          "Move the registration of the artifact registered with the stanza `from` to the stanza a rewrap made of it (`to`); 404 when `from` is registered nowhere",
        security,
        body: restanzaBody,
        response: { 200: artifactSchema, ...errorResponses },
      },
    },
    async (req) => {
      const found = await registeredWith(ctx, stanzaKey(req.body.from));
      await authorizeAction(ctx, req, "artifacts:register", [{ artifactId: found.id }]);
      return restanzaArtifact(ctx, req, found.id, req.body);
    },
  );

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
        querystring: listQuerySchema,
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
      const r = await ctx.artifacts.list(listQuery(q));
      const visible = await readable(ctx, req, r.artifacts);
      await release(ctx, req, {
        count: visible.length,
        hidden: r.artifacts.length - visible.length,
        ...(q.key !== undefined ? { key: q.key } : {}),
        ...(q.label !== undefined ? { label: q.label } : {}),
      });
      return { artifacts: visible, ...(r.next ? { nextCursor: r.next } : {}) };
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/artifacts/:id",
    {
      config: {
        action: "artifacts.show",
        scope: "admin",
        // The Service first: a principal that may not read artifacts learns nothing of ids.
        authz: {
          action: "artifacts:read",
          resources: (req) => ["service", { artifactId: (req.params as { id: string }).id }],
        },
      },
      schema: {
        summary: "One artifact",
        security,
        params: artifactIdParams,
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

/**
 * Moves a registration to the stanza a rewrap made (`rewrap --registry`, and `rewrap` of a
 * registered file by the route keyed on the stanza). Sound for the same
 * reason registration is: the caller must hold both stanzas, `from` must be the registered one,
 * both must be this service's stanzas of the same key that open to the same file key (compared
 * in constant time; the keys never leave the service) and the caller must be allowed to rewrap
 * with that key; `to` must be registered nowhere. So a registration only ever follows its own
 * file key, and its labels never move to another file's stanza.
 */
async function restanzaArtifact(
  ctx: ServiceContext,
  req: FastifyRequest,
  id: string,
  body: { from: WireStanza; to: WireStanza },
): Promise<Artifact> {
  const from = stanzaKey(body.from);
  const to = stanzaKey(body.to);
  await authorizeAction(ctx, req, "rewrap", [from, to]);
  if (from.key !== to.key)
    throw new ServiceError(422, "unprocessable", "from and to must be stanzas of the same key");
  const registered = await ctx.artifacts.stanzaOf(id);
  if (registered === null)
    throw new ServiceError(
      409,
      "conflict",
      `artifact ${id} was registered without a stanza digest: there is no registration to move`,
    );
  if (registered !== from.stanza!.digest)
    throw new ServiceError(
      409,
      "conflict",
      `artifact ${id} is not registered with the stanza given as from (it was re-registered or moved already)`,
    );
  const a = await ctx.keys.unwrap(stanzaFromWire(body.from));
  try {
    const b = await ctx.keys.unwrap(stanzaFromWire(body.to));
    try {
      if (!timingSafeEqual(a.fileKey, b.fileKey))
        throw new ServiceError(422, "unprocessable", "from and to do not hold the same file key");
    } finally {
      b.fileKey.fill(0);
    }
  } finally {
    a.fileKey.fill(0);
  }
  if (
    !(await ctx.artifacts.restanza(id, from.stanza!.digest, to.stanza!.digest, to.stanza!.version))
  )
    throw new ServiceError(409, "conflict", `artifact ${id} moved to another stanza meanwhile`);
  ctx.stanzaArtifacts.forget(to.stanza!.digest);
  const out = await ctx.artifacts.show(id);
  await release(ctx, req, {
    artifact: id,
    key: to.key,
    from: { version: from.stanza!.version, stanza: from.stanza!.digest },
    to: { version: to.stanza!.version, stanza: to.stanza!.digest },
  });
  return out;
}

/** The artifact registered with the stanza `from` (as its key and version say); 404 when none. */
async function registeredWith(ctx: ServiceContext, from: KeyResource): Promise<StanzaArtifact> {
  const found = await ctx.artifacts.byStanza(from.stanza!.digest);
  if (!found || found.key !== from.key || found.version !== from.stanza!.version)
    throw new ServiceError(
      404,
      "not_found",
      "no artifact is registered with the stanza given as from",
    );
  return found;
}

/**
 * A reseal's registration (`reseal` calls it before renaming the new file into place). The
 * caller must hold the old artifact's registered stanza (`from`, by digest: a copy of the old
 * file's header) and be allowed to open it and to register both artifacts; the new header must
 * carry a stanza of this service (of the old key when it has one) whose file key its MAC
 * verifies under, and meet the tiers. The service cannot compare plaintexts (a reseal changes
 * the file key): the digest is inherited on the caller's word, as every registration's is.
 */
async function succeed(
  ctx: ServiceContext,
  req: FastifyRequest<{ Body: SuccessorBody }>,
): Promise<Artifact> {
  const from = stanzaKey(req.body.from);
  const found = await registeredWith(ctx, from);
  const old = await ctx.artifacts.show(found.id);
  const h = await readRegisteredHeader(ctx.keys, ctx.serverId, req.body.header, {
    preferKey: old.key,
  });
  const location = req.body.location ?? old.location;
  const next = {
    id: newArtifactId(),
    digest: old.digest,
    key: h.stanza.key,
    version: h.stanza.version,
    labels: old.labels,
    ...(location !== undefined ? { location } : {}),
    stanzaDigest: h.stanza.digest,
    headerDigest: h.headerDigest,
  };
  await authorizeAction(ctx, req, "artifacts:register", [
    { artifactId: old.id },
    {
      artifact: {
        id: next.id,
        key: next.key,
        version: next.version,
        digest: next.digest,
        labels: next.labels,
      },
    },
  ]);
  await checkRegistrationTier(ctx.keys, { key: next.key, labels: next.labels, header: h });
  const a = await ctx.artifacts.succeed(old.id, from.stanza!.digest, next);
  if (!a)
    throw new ServiceError(409, "conflict", `artifact ${old.id} moved to another stanza meanwhile`);
  ctx.stanzaArtifacts.forget(h.stanza.digest);
  await release(ctx, req, {
    artifact: a.id,
    supersedes: old.id,
    key: a.key,
    version: a.version,
    stanza: h.stanza.digest,
    header: h.headerDigest,
    recipientKinds: [...new Set(h.kinds)],
  });
  return a;
}

/**
 * The rows of a page the principal may read: one `artifacts:read` decision per Artifact (key
 * attributes through the 1 s key cache; ~0.3 ms per distinct row, memoised). Denied rows are
 * left out, so a page can be shorter than `limit` while `nextCursor` still follows.
 */
export async function readable(
  ctx: ServiceContext,
  req: FastifyRequest,
  rows: Artifact[],
): Promise<Artifact[]> {
  const base = requestFor(req, "artifacts:read");
  // One policy snapshot for the whole page, as for every other decision.
  const { authorizer } = await ctx.policies.active();
  const out: Artifact[] = [];
  for (const a of rows) {
    const key = await keyAttrs(ctx, a.key);
    const d = authorizer.authorize({ ...base, resources: [artifactResource(a, key)] });
    if (d.decision === "allow") out.push(a);
  }
  return out;
}
