/** Dual control: --approvals OP=M,... and --approval-ttl. */
import { fail } from "../../../format/errors.js";
import { type OperationName, parseApprovalSpec } from "../../../service/index.js";
import type { ServeFlags } from "./flags.js";

export interface ApprovalSettings {
  /** Approvals needed per operation (as given; an absent operation needs 1). */
  readonly required: Partial<Record<OperationName, number>>;
  readonly ttlMs: number;
}

export function approvalSettings(o: ServeFlags): ApprovalSettings {
  let required: ApprovalSettings["required"] = {};
  try {
    required = parseApprovalSpec(o.approvals ?? "");
  } catch (e) {
    fail("E_USAGE", (e as Error).message);
  }
  const ttlHours = Number(o.approvalTtl);
  if (!Number.isFinite(ttlHours) || ttlHours <= 0 || ttlHours > 24 * 30)
    fail("E_USAGE", "--approval-ttl must be more than 0 and at most 720 hours");
  return { required, ttlMs: Math.round(ttlHours * 3_600_000) };
}
