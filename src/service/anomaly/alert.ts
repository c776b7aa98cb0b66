/**
 * One alert and its two renderings: the audit entry (the record) and the webhook body. Neither
 * holds a secret: principal id, source address, workload id, certificate fingerprint, counts.
 */
import type { AuditRecord } from "../audit/chain.js";

export type AlertKind = "rate" | "first-seen";

export interface Alert {
  readonly id: string;
  readonly kind: AlertKind;
  readonly principal: string;
  readonly source: string;
  readonly requestId: string;
  readonly ts: string;
  /** Rate: window and baseline; first-seen: what is new and the client tuple. */
  readonly details: Record<string, unknown>;
  /** Whether auto-block blocked the principal because of this alert. */
  readonly blocked: boolean;
  readonly reason: string;
}

export function alertAuditRecord(a: Alert): AuditRecord {
  return {
    action: `alert.${a.kind}`,
    outcome: "alert",
    // No HTTP response of its own; the triggering request has its own entry (requestId).
    status: 0,
    principal: a.principal,
    source: a.source,
    requestId: a.requestId,
    resource: { alert: a.id, ...integral(a.details), ...(a.blocked ? { blocked: true } : {}) },
    reason: a.reason,
  };
}

export function alertWebhookBody(a: Alert, server: string): Record<string, unknown> {
  return {
    type: "tensorseal.alert",
    id: a.id,
    kind: a.kind,
    server,
    principal: a.principal,
    source: a.source,
    requestId: a.requestId,
    ts: a.ts,
    details: a.details,
    blocked: a.blocked,
    reason: a.reason,
  };
}

/** Canonical audit JSON holds only safe integers: other numbers (a baseline of 2.5) become strings. */
function integral(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(o).map(([k, v]) => [
      k,
      typeof v === "number" && !Number.isSafeInteger(v) ? String(v) : v,
    ]),
  );
}
