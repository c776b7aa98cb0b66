/**
 * Approval events for a webhook (`serve --approval-webhook`), so approvers hear of a request
 * instead of polling `approvals list`: requested, approved (still short of M), executed, failed,
 * rejected, expired. Only requests that need more than one approval produce events (M = 1 is
 * dual control off). The body carries what the request's view shows everyone (the operation's
 * summary, never a key, a token or an export result) and is signed like anomaly alerts.
 */
import { randomBytes } from "node:crypto";
import type { ApprovalView } from "./service.js";

export type ApprovalEventKind =
  | "requested"
  | "approved"
  | "executed"
  | "failed"
  | "rejected"
  | "expired";

export interface ApprovalEvent {
  readonly kind: ApprovalEventKind;
  /** The request as `approvals list` shows it (summary parameters, no result). */
  readonly approval: ApprovalView;
  /** Who caused it: the requester, an approver, or `system:approvals` for an expiry. */
  readonly by: string;
}

/** The webhook body and its id (also sent as x-tensorseal-event-id). */
export function approvalEventBody(
  e: ApprovalEvent,
  server: string,
  ts: string,
): { id: string; body: Record<string, unknown> } {
  const a = e.approval;
  const id = `evt_${randomBytes(12).toString("hex")}`;
  return {
    id,
    body: {
      type: "tensorseal.approval",
      id,
      event: e.kind,
      server,
      ts,
      by: e.by,
      approval: {
        id: a.id,
        operation: a.operation,
        params: a.params,
        requester: a.requester,
        required: a.required,
        approvers: a.approvers,
        missing: Math.max(0, a.required - a.approvers.length),
        state: a.state,
        expires: a.expires,
        ...(a.outcome ? { outcome: a.outcome } : {}),
      },
    },
  };
}
