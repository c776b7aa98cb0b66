/** The API shapes the console reads (see the service's OpenAPI document). */

export interface SessionInfo {
  principal: string;
  kind: string;
  roles: string[];
  csrf: string;
  expires: string;
}

export interface KeyVersion {
  version: number;
  created: string;
  state: "enabled" | "disabled" | "scheduled" | "destroyed";
  destroyAfter?: string;
}

export interface Key {
  name: string;
  created: string;
  primaryVersion: number;
  minDecryptionVersion?: number;
  minEncryptionVersion?: number;
  labels?: Record<string, string>;
  sensitivity?: string;
  rotationPeriod?: number | null;
  rotationDue?: string | null;
  versions: KeyVersion[];
}

export interface Approval {
  id: string;
  operation: string;
  params?: Record<string, unknown>;
  requester: string;
  required: number;
  approvers: string[];
  state: string;
  created?: string;
  expires: string;
}

export interface AuditEntry {
  seq: number;
  ts: string;
  action: string;
  outcome: string;
  status: number;
  principal: string | null;
  source: string;
  requestId: string;
  resource?: Record<string, unknown>;
  reason?: string;
  hash: string;
}

export interface AuditPage {
  entries: AuditEntry[];
  nextSince: number;
  more: boolean;
}

export interface Artifact {
  id: string;
  digest: string;
  key: string;
  version: number;
  labels: Record<string, string>;
  location?: string;
  created: string;
  /** Lineage of a reseal: the artifact this one replaced, */
  supersedes?: string;
  /** the newest one that replaced this one, and when. */
  supersededBy?: string;
  superseded?: string;
}

export interface Blocked {
  principal: string;
  since: string;
  reason: string;
}

export type OverviewSection =
  | "keys"
  | "approvals"
  | "alerts"
  | "blocked"
  | "chain"
  | "findings"
  | "incidents";

/** A doctor finding the service judged about itself (never a token or key). */
export interface OverviewFinding {
  id: string;
  severity: "note" | "warning" | "error" | "critical";
  message: string;
  evidence: string;
  fix: string;
}

/** GET /v1/overview: the sections the caller may read; the others are named in `omitted`. */
export interface Overview {
  at: string;
  omitted: OverviewSection[];
  keys?: { total: number; due: { name: string; rotationDue: string }[] };
  approvals?: { count: number; more: boolean };
  incidents?: { count: number; more: boolean };
  alerts?: { count: number; more: boolean; from: string };
  blocked?: { count: number };
  chain?: {
    server: string;
    every: number;
    head: { seq: number; hash: string } | null;
    checkpoint: { seq: number; hash: string; ts: string; valid: boolean } | null;
  };
  findings?: OverviewFinding[];
}

/** What an incident is about (src/incident/types.ts Scope). */
export interface IncidentScope {
  kind: "key" | "principal" | "endpoint" | "artifact";
  value: string;
  version?: number;
}

/** GET /v1/incidents, /v1/incidents/:id (the service's incident record). */
export interface ServiceIncident {
  id: string;
  title: string;
  severity: "critical" | "high" | "medium";
  state: "open" | "closed";
  scope: IncidentScope[];
  summary: string;
  opened: string;
  openedBy: string;
  closed?: string;
  closedBy?: string;
  resolution?: string;
}

export interface IncidentNote {
  id: string;
  at: string;
  author: string;
  text: string;
}

/** GET /v1/drills: one scenario run recorded by `drill run --server`. */
export interface DrillRun {
  id: string;
  scenario: string;
  result: "pass" | "fail";
  detectMs: number | null;
  containMs: number | null;
  durationMs: number;
  time: string;
  database: string;
  checks: { passed: number; total: number };
  failed: string[];
  recordedBy: string;
}
