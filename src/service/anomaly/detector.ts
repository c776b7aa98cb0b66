/**
 * Anomaly detection wired to the request path: `observe` after authentication (first-seen
 * clients: no I/O when the tuple is known here), `released` after a key release's audit entry
 * is committed (rate against baseline). An alert writes an audit entry (outcome "alert"), goes
 * to the webhook queue and, with auto-block, blocks the principal. Detection never refuses or
 * fails the request it observes: its errors are logged.
 */
import { randomUUID } from "node:crypto";
import type { FastifyBaseLogger, FastifyRequest } from "fastify";
import type { AuditLog } from "../audit/log.js";
import type { Metrics } from "../metrics.js";
import type { SignedWebhook } from "../webhook.js";
import { type Alert, alertAuditRecord, alertWebhookBody } from "./alert.js";
import type { BlockList } from "./blocks.js";
import type { ClientRegistry, ClientTuple, Novelty } from "./clients.js";
import type { AnomalySettings } from "./options.js";
import { type RateAlert, RateTracker } from "./rate.js";

/** Audit actions that release key material, and how many keys each released. */
const RELEASES: Record<string, (resource: Record<string, unknown>) => number> = {
  "datakeys.unwrap": () => 1,
  "datakeys.unwrap-attested": () => 1,
  "datakeys.rewrap": () => 1,
  "datakeys.unwrap-batch": (r) => (typeof r.ok === "number" ? r.ok : 0),
};

export interface DetectorDeps {
  readonly settings: AnomalySettings;
  readonly clients: ClientRegistry;
  readonly blocks: BlockList;
  readonly webhook: SignedWebhook | null;
  readonly audit: AuditLog;
  readonly metrics: Metrics;
  readonly log: FastifyBaseLogger;
  readonly now: () => number;
  readonly serverId: string;
}

export class AnomalyDetector {
  private readonly rate: RateTracker;

  constructor(private readonly d: DetectorDeps) {
    this.rate = new RateTracker(d.settings);
  }

  /** First-seen check of an authenticated request; awaits I/O only for a tuple unknown here. */
  async observe(req: FastifyRequest): Promise<void> {
    const p = req.principal;
    if (!p || !this.d.settings.firstSeen) return;
    const t: ClientTuple = {
      principal: p.id,
      source: req.ip,
      cert: certFingerprint(req),
      workload: p.workload?.id ?? p.id,
    };
    if (this.d.clients.knows(t)) return;
    try {
      const n = await this.d.clients.record(t);
      if (!n || ("parts" in n && n.parts.length === 0)) return;
      if ("principal" in n && !this.d.settings.firstSeenPrincipal) return;
      await this.raise(req, "first-seen", firstSeenDetails(t, n), firstSeenReason(n), false);
    } catch (e) {
      req.log.error({ err: e }, "first-seen check failed (the request goes on)");
    }
  }

  /** Counts a release whose audit entry is committed; alerts (and blocks) on a rate jump. */
  async released(req: FastifyRequest, resource: Record<string, unknown>): Promise<void> {
    const p = req.principal;
    const count = RELEASES[req.routeOptions.config.action ?? ""];
    if (!p || !count) return;
    const n = count(resource);
    if (n <= 0) return;
    const r = this.rate.record(p.id, n, this.d.now());
    if (!r) return;
    const block = this.d.settings.autoBlock;
    try {
      if (block) {
        await this.d.blocks.block(p.id, rateReason(r));
        this.d.metrics.anomalyBlock();
      }
      await this.raise(req, "rate", { ...r }, rateReason(r), block);
    } catch (e) {
      req.log.error({ err: e }, "rate alert failed (the request goes on)");
    }
  }

  /** An admin unblocked the principal: its alerting window starts over on this replica. */
  unblocked(principal: string): void {
    this.rate.resetWindow(principal);
  }

  /** Waits for queued webhook deliveries; true when none is left. */
  async drain(ms?: number): Promise<boolean> {
    return this.d.webhook ? this.d.webhook.drain(ms) : true;
  }

  close(): void {
    this.d.webhook?.close();
  }

  private async raise(
    req: FastifyRequest,
    kind: Alert["kind"],
    details: Record<string, unknown>,
    reason: string,
    blocked: boolean,
  ): Promise<void> {
    const a: Alert = {
      id: randomUUID(),
      kind,
      principal: req.principal!.id,
      source: req.ip,
      requestId: req.id,
      ts: new Date(this.d.now()).toISOString(),
      details,
      blocked,
      reason,
    };
    this.d.metrics.anomalyAlert(kind);
    this.d.log.warn({ alert: a.id, kind, principal: a.principal, reason }, "anomaly alert");
    // The webhook goes out even if the audit write fails: it may be the only signal left.
    this.d.webhook?.send(a.id, alertWebhookBody(a, this.d.serverId));
    await this.d.audit.append(alertAuditRecord(a));
  }
}

/** The verified client certificate's SHA-256 fingerprint (auth/mtls.ts), else "". */
function certFingerprint(req: FastifyRequest): string {
  return req.clientCert?.fingerprint ?? "";
}

function firstSeenDetails(t: ClientTuple, n: Novelty): Record<string, unknown> {
  return {
    new: "principal" in n ? ["principal"] : [...n.parts],
    client: {
      source: t.source,
      workload: t.workload,
      ...(t.cert ? { certificate: t.cert } : {}),
    },
  };
}

function firstSeenReason(n: Novelty): string {
  return "principal" in n
    ? "first-seen principal"
    : `first-seen ${n.parts.join(", ")} for this principal`;
}

function rateReason(r: RateAlert): string {
  return `${r.windowCount} keys released in the minute from ${r.windowStart}, over ${r.factor}x the baseline of ${r.baseline} per minute`;
}
