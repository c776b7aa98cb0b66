/** Dual control: --approvals OP=M,..., --approval-ttl and the event webhook (--approval-webhook*). */
import { fail } from "../../../format/errors.js";
import {
  type OperationName,
  parseApprovalSpec,
  type WebhookOptions,
} from "../../../service/index.js";
import type { ServeFlags } from "../../commands/serve/flags.js";
import { decimalFlag } from "../../commands/service-shared.js";
import { webhookFlags } from "./webhook.js";

export interface ApprovalSettings {
  /** Approvals needed per operation (as given; an absent operation needs 1). */
  readonly required: Partial<Record<OperationName, number>>;
  readonly ttlMs: number;
  readonly webhook?: WebhookOptions;
}

export async function approvalSettings(o: ServeFlags): Promise<ApprovalSettings> {
  let required: ApprovalSettings["required"] = {};
  try {
    required = parseApprovalSpec(o.approvals ?? "");
  } catch (e) {
    fail("E_USAGE", (e as Error).message);
  }
  const ttlHours = decimalFlag("--approval-ttl", o.approvalTtl, 0.01, 24 * 30, " hours");
  const webhook = await webhookFlags(
    "--approval-webhook",
    o.approvalWebhook,
    "--approval-webhook-secret-file",
    o.approvalWebhookSecretFile,
  );
  return { required, ttlMs: Math.round(ttlHours * 3_600_000), ...(webhook ? { webhook } : {}) };
}
