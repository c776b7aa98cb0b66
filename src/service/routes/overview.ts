/**
 * `GET /v1/overview`: what the console's first page shows, in one request and one audit entry
 * instead of five reads (each of which is itself a durable audit append). The route needs the
 * Cedar action `overview:read` on the Service; each section then needs the action of the route
 * that would show the same thing (keys `keys:list`, approvals `approvals:read`, alerts and the
 * chain `audit:read`, blocked principals `principals:read`, open incidents `incidents:read`), decided for this request with the
 * same policies: a section the caller may not read is left out (named in `omitted`), so the
 * summary shows nothing the caller's API rights would not. `findings` are the doctor's checks
 * that need only what the service holds (its keys past their rotation period, its bootstrap
 * tokens without expiry long in use, destroy/export without dual control), judged by the
 * doctor's rule functions (the first two the same as `doctor --server/--db`);
 * they need `audit:read` (admin and auditor): they judge the service's posture, which is what an
 * auditor reviews, and name nothing the audit log does not (token ids are its principals). Every read is bounded: the alerts of
 * the last 24 hours through the audit index (outcome, seq), at most ALERT_CAP of them counted.
 */
import type { FastifyInstance } from "fastify";
import { judgeAnchor } from "../../doctor/check-anchor.js";
import { judgeDualControl } from "../../doctor/check-dual-control.js";
import { judgeServiceKeys } from "../../doctor/check-service-keys.js";
import { judgeServiceShares } from "../../doctor/check-service-shares.js";
import { DEFAULT_SHARE_DAYS } from "../../doctor/check-shares.js";
import { DEFAULT_TOKEN_DAYS, judgeTokens } from "../../doctor/check-tokens.js";
import { type Finding, rank } from "../../doctor/findings.js";
import { checkCheckpoint } from "../audit/chain.js";
import { queryAuditPage } from "../audit/index-store.js";
import { newestCheckpoint } from "../audit/store.js";
import { ed25519FromRaw } from "../audit/verify.js";
import { TokenRepo } from "../auth/tokens.js";
import type { ServiceContext } from "../context.js";
import { permits, release } from "../protected.js";
import { errorResponses } from "../schemas.js";
import { shareEvents } from "./root.js";

const security = [{ bearer: [] }];

const DAY_MS = 86_400_000;
/** Keys whose rotation is due within this many days are listed. */
export const OVERVIEW_DUE_DAYS = 7;
/** Alerts are counted up to this many (then `more`). */
export const OVERVIEW_ALERT_CAP = 100;
/** Pending approvals are counted up to this many (then `more`). */
const PENDING_CAP = 100;
/** Open incidents are counted up to this many (then `more`). */
const INCIDENT_CAP = 100;

/** Each section and the action of the route that shows the same information. */
export const OVERVIEW_SECTIONS = {
  keys: "keys:list",
  approvals: "approvals:read",
  alerts: "audit:read",
  blocked: "principals:read",
  chain: "audit:read",
  findings: "audit:read",
  incidents: "incidents:read",
} as const;
type Section = keyof typeof OVERVIEW_SECTIONS;

const count = {
  type: "object",
  required: ["count", "more"],
  properties: {
    count: { type: "integer" },
    more: { type: "boolean", description: "more than count exist (the count is capped)" },
  },
} as const;

const overviewSchema = {
  type: "object",
  required: ["at", "omitted"],
  properties: {
    at: { type: "string", description: "the server's time of the summary" },
    omitted: {
      type: "array",
      items: { type: "string", enum: Object.keys(OVERVIEW_SECTIONS) },
      description: "sections left out: the caller may not read them",
    },
    keys: {
      type: "object",
      required: ["total", "due"],
      properties: {
        total: { type: "integer" },
        due: {
          type: "array",
          description: `keys whose rotation is due within ${OVERVIEW_DUE_DAYS} days (or overdue)`,
          items: {
            type: "object",
            required: ["name", "rotationDue"],
            properties: { name: { type: "string" }, rotationDue: { type: "string" } },
          },
        },
      },
    },
    approvals: { ...count, description: "pending approval requests" },
    incidents: { ...count, description: "open incidents (GET /v1/incidents?state=open)" },
    alerts: {
      ...count,
      required: [...count.required, "from"],
      properties: { ...count.properties, from: { type: "string" } },
      description: "alert audit entries at or after from (the last 24 hours)",
    },
    blocked: {
      type: "object",
      required: ["count"],
      properties: { count: { type: "integer" } },
    },
    chain: {
      type: "object",
      required: ["server", "every", "head", "checkpoint"],
      properties: {
        server: { type: "string" },
        every: { type: "integer" },
        head: {
          type: ["object", "null"],
          required: ["seq", "hash"],
          properties: { seq: { type: "integer" }, hash: { type: "string" } },
        },
        checkpoint: {
          type: ["object", "null"],
          required: ["seq", "hash", "ts", "valid"],
          properties: {
            seq: { type: "integer" },
            hash: { type: "string" },
            ts: { type: "string" },
            valid: {
              type: "boolean",
              description:
                "its signature verifies under the server's key and the entry at seq still has that hash (not a verification of the whole chain: `audit verify`)",
            },
          },
        },
      },
    },
    findings: {
      type: "array",
      description:
        "doctor findings the service can judge itself (service.key-rotation-overdue, service.token-no-expiry, service.dual-control-off, service.audit-anchor-missing, root.shares-untested), worst first; never a token or key",
      items: {
        type: "object",
        required: ["id", "severity", "message", "evidence", "fix"],
        properties: {
          id: { type: "string" },
          severity: { type: "string", enum: ["note", "warning", "error", "critical"] },
          message: { type: "string" },
          evidence: { type: "string" },
          fix: { type: "string" },
        },
      },
    },
  },
} as const;

export async function overviewRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get(
    "/v1/overview",
    {
      config: {
        action: "overview.read",
        authz: { action: "overview:read", resources: () => ["service"] },
      },
      schema: {
        summary:
          "The console's summary: keys due for rotation, pending approvals, open incidents, alerts of the last 24 hours, blocked principals, the audit chain's head and last checkpoint — each section only if the caller may read it",
        security,
        response: { 200: overviewSchema, ...errorResponses },
      },
    },
    async (req) => {
      const allowed = new Set<Section>();
      for (const [s, action] of Object.entries(OVERVIEW_SECTIONS) as [Section, string][])
        if (await permits(ctx, req, action, ["service"])) allowed.add(s);
      const now = ctx.keys.now();
      const out: Record<string, unknown> = { at: new Date(now).toISOString() };
      if (allowed.has("keys")) {
        const keys = await ctx.keys.list();
        const soon = now + OVERVIEW_DUE_DAYS * DAY_MS;
        const due = keys
          .filter((k) => k.rotationDue !== null && Date.parse(k.rotationDue) <= soon)
          .map((k) => ({ name: k.name, rotationDue: k.rotationDue as string }));
        out.keys = { total: keys.length, due };
      }
      if (allowed.has("approvals")) {
        await ctx.approvals.expireDue();
        const pending = await ctx.approvals.list("pending", PENDING_CAP + 1);
        out.approvals = {
          count: Math.min(pending.length, PENDING_CAP),
          more: pending.length > PENDING_CAP,
        };
      }
      if (allowed.has("alerts")) {
        const from = new Date(now - DAY_MS).toISOString();
        // Through the (outcome, seq) index: reads the alerts, never the whole log.
        const rows = await queryAuditPage(
          ctx.db,
          { outcome: "alert", from },
          0,
          OVERVIEW_ALERT_CAP + 1,
        );
        out.alerts = {
          count: Math.min(rows.length, OVERVIEW_ALERT_CAP),
          more: rows.length > OVERVIEW_ALERT_CAP,
          from,
        };
      }
      if (allowed.has("incidents")) {
        const open = await ctx.incidents.list({ state: "open", limit: INCIDENT_CAP });
        out.incidents = { count: open.incidents.length, more: open.next !== undefined };
      }
      if (allowed.has("blocked")) out.blocked = { count: (await ctx.blocks.list()).length };
      if (allowed.has("chain")) out.chain = await chain(app, ctx);
      if (allowed.has("findings")) out.findings = await findings(ctx, new Date(now));
      const omitted = (Object.keys(OVERVIEW_SECTIONS) as Section[]).filter((s) => !allowed.has(s));
      out.omitted = omitted;
      await release(ctx, req, { shown: [...allowed], omitted });
      return out;
    },
  );
}

/**
 * The doctor's service checks on the service's own state. Keys are judged only against their
 * own rotation period (the service has no default period: doctor's is a .tensorseal.yaml
 * setting of the client); tokens against doctor's default --token-days.
 */
async function findings(ctx: ServiceContext, now: Date): Promise<Finding[]> {
  const keys = await ctx.keys.list();
  const tokens = await new TokenRepo(ctx.db).list();
  const out = [
    ...judgeServiceKeys(keys, now, null, `service ${ctx.serverId}`),
    ...judgeTokens(tokens, now, DEFAULT_TOKEN_DAYS),
    ...judgeDualControl(
      {
        destroy: ctx.approvals.requiredFor("destroy"),
        export: ctx.approvals.requiredFor("export"),
      },
      {
        total: keys.length,
        exposed: keys.filter((k) => !ctx.keys.tiers.dualControl(k.sensitivity)).length,
      },
      `service ${ctx.serverId}`,
    ),
    ...judgeAnchor(ctx.anchored, `service ${ctx.serverId}`),
    ...judgeServiceShares(
      await shareEvents(ctx),
      now,
      DEFAULT_SHARE_DAYS,
      `service ${ctx.serverId}`,
    ),
  ];
  // Worst first, as doctor prints them.
  return out.sort(
    (a, b) => rank(b.severity) - rank(a.severity) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}

/** The chain's head and newest checkpoint, the checkpoint checked against its signature and entry. */
async function chain(app: FastifyInstance, ctx: ServiceContext) {
  const db = ctx.db.db;
  const head = await db
    .selectFrom("audit")
    .select(["seq", "hash"])
    .orderBy("seq", "desc")
    .limit(1)
    .executeTakeFirst();
  const cp = await newestCheckpoint(db);
  let checkpoint = null;
  if (cp) {
    const seq = Number(cp.seq);
    const entry = await db
      .selectFrom("audit")
      .select("hash")
      .where("seq", "=", seq)
      .executeTakeFirst();
    const valid =
      entry?.hash === cp.hash &&
      checkCheckpoint(
        ed25519FromRaw(app.tensorseal.auditPublicKey),
        app.tensorseal.serverId,
        seq,
        cp.hash,
        cp.signature,
      );
    checkpoint = { seq, hash: cp.hash, ts: cp.ts, valid };
  }
  return {
    server: app.tensorseal.serverId,
    every: app.tensorseal.checkpointEvery,
    head: head ? { seq: Number(head.seq), hash: head.hash } : null,
    checkpoint,
  };
}
