/** What the route plugins share: the services they call (no database access in handlers). */

import type { FastifyRequest } from "fastify";
import type { AuditRecord } from "./audit/chain.js";
import type { AuditLog } from "./audit/log.js";
import type { Authenticator } from "./auth/principal.js";
import type { Database } from "./db/schema.js";
import type { KeyService } from "./keys/service.js";
import type { Metrics } from "./metrics.js";

export interface ServiceContext {
  readonly db: Database;
  readonly keys: KeyService;
  readonly audit: AuditLog;
  readonly authenticators: readonly Authenticator[];
  readonly metrics: Metrics;
  readonly batchMax: number;
  readonly serverId: string;
}

export function recordFor(
  req: FastifyRequest,
  outcome: AuditRecord["outcome"],
  status: number,
  extra: { resource?: Record<string, unknown>; reason?: string } = {},
): AuditRecord {
  return {
    action:
      req.routeOptions.config.action ?? `${req.method} ${req.routeOptions.url ?? "unmatched"}`,
    outcome,
    status,
    principal: req.principal?.id ?? req.subject ?? null,
    source: req.ip,
    requestId: req.id,
    ...extra,
  };
}
