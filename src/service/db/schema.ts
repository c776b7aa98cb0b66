/** Table types of the key service's database (the same for SQLite and PostgreSQL). */
import type { Generated, Kysely } from "kysely";

export interface MetaTable {
  k: string;
  v: string;
}

export interface KeysTable {
  name: string;
  created: string;
  primary_version: number;
  /** Versions below this are refused for unwrap (and rewrap). */
  min_decryption_version: Generated<number>;
  /** Wrap refuses when the primary is below this (rotate first). */
  min_encryption_version: Generated<number>;
  /** Canonical JSON label map (migration 0007). */
  labels: Generated<string>;
  /** A name of authz/attributes.ts SENSITIVITIES (migration 0007). */
  sensitivity: Generated<string>;
  /** Seconds between rotations (`POST /v1/rotate-due`), null: none (migration 0009). */
  rotation_period: number | null;
}

/** One KEK version; `sealed` = base64(nonce 12 || AES-256-GCM(material) || tag), see keys/sealing.ts. */
export interface KeyVersionsTable {
  name: string;
  version: number;
  created: string;
  /** enabled | disabled | scheduled | destroyed */
  state: string;
  /** Empty once destroyed (crypto-shredding). */
  sealed: string;
  /** When a scheduled version is erased (ISO 8601), else null. */
  destroy_after: string | null;
  state_changed: string | null;
}

/** Bootstrap bearer tokens: only SHA-256(token) is stored. */
export interface TokensTable {
  id: string;
  hash: string;
  scopes: string;
  label: string;
  created: string;
  revoked: string | null;
}

/** The hash-chained audit log: `entry` is canonical JSON, `hash` = SHA-256(entry) in hex. */
export interface AuditTable {
  seq: number;
  entry: string;
  hash: string;
  /** The index (audit/index-fields.ts, migration 0008): copies of the entry's fields. */
  ts: string | null;
  action: string | null;
  outcome: string | null;
  principal: string | null;
}

/** Keys and artifacts each audit entry names (audit/index-fields.ts). */
export interface AuditRefsTable {
  seq: number;
  kind: string;
  ref: string;
}

/** Ed25519-signed checkpoints over (server id, seq, hash). */
export interface CheckpointsTable {
  seq: number;
  hash: string;
  signature: string;
  ts: string;
}

/** Artifact inventory (`/v1/artifacts`); `labels` is canonical JSON (keys sorted), see artifacts/repo.ts. */
export interface ArtifactsTable {
  id: string;
  digest: string;
  key_name: string;
  key_version: number;
  labels: string;
  location: string | null;
  created: string;
  /** "sha256:<hex>" of the wrapped file key of its service stanza (migration 0007), or null. */
  stanza_digest: string | null;
  /** Lineage (migration 0012): the artifact this one replaced (a reseal), or null. */
  supersedes: string | null;
  /** The newest artifact that replaced this one, and when; null while it is current. */
  superseded_by: string | null;
  superseded_at: string | null;
  /** "sha256:<hex>" of the header bytes the registration carried (migration 0012), or null. */
  header_digest: string | null;
}

/** Attestation challenge nonces; `expires` in Unix milliseconds. */
export interface NoncesTable {
  nonce: string;
  expires: number;
}

/** Client certificates revoked by SHA-256 fingerprint (hex) of their DER; see auth/revoked-certs.ts. */
export interface RevokedCertsTable {
  fingerprint: string;
  reason: string;
  revoked: string;
}

/** A (source, certificate, workload) tuple a principal was seen with; `id` = SHA-256 of it. */
export interface AnomalyClientsTable {
  id: string;
  principal: string;
  source: string;
  /** SHA-256 fingerprint of the client certificate, "" without one. */
  cert: string;
  workload: string;
  first_seen: string;
}

/** Principals refused by anomaly auto-block until an admin unblocks them. */
export interface AnomalyBlocksTable {
  principal: string;
  since: string;
  reason: string;
}

/**
 * A dual-control request (see approvals/). state: pending | executing | executed | failed |
 * rejected | expired; `params` canonical JSON of the operation's parameters; `expires` Unix ms;
 * `outcome` JSON of what execution did; `result` a one-time result for the requester (export).
 */
export interface ApprovalsTable {
  id: string;
  operation: string;
  params: string;
  requester: string;
  required: number;
  state: string;
  created: string;
  expires: number;
  updated: string;
  outcome: string | null;
  result: string | null;
}

/** One vote (approve | reject) per principal and request. */
export interface ApprovalVotesTable {
  approval_id: string;
  principal: string;
  vote: string;
  at: string;
}

/** Cedar policy sets approved over the API; `policies` is JSON {id: text}; newest is active. */
export interface PoliciesTable {
  version: number;
  policies: string;
  digest: string;
  approval_id: string | null;
  created: string;
}

/**
 * An incident as the service records it (migration 0011, routes/incidents.ts): opened from the
 * console or mirrored by `tensorseal incident open --server`. `scope` is JSON of
 * src/incident/types.ts `Scope[]`; state: open | closed.
 */
export interface IncidentsTable {
  id: string;
  title: string;
  severity: string;
  state: string;
  scope: string;
  summary: string;
  opened: string;
  opened_by: string;
  closed: string | null;
  closed_by: string | null;
  resolution: string | null;
}

/** One timeline entry of an incident (kind: note; opening and closing are the incident's own). */
export interface IncidentNotesTable {
  id: string;
  incident_id: string;
  at: string;
  author: string;
  text: string;
}

/**
 * One drill scenario run recorded on the service (`drill run --server`, routes/drills.ts): the
 * fields of a drill history line (doctor/drill-history.ts) plus who recorded it and when.
 */
export interface DrillsTable {
  id: string;
  scenario: string;
  result: string;
  detect_ms: number | null;
  contain_ms: number | null;
  duration_ms: number;
  time: string;
  version: string;
  database: string;
  checks_passed: number;
  checks_total: number;
  /** JSON array of the names of the checks that did not hold. */
  failed: string;
  error: string | null;
  recorded: string;
  recorded_by: string;
}

export interface Schema {
  meta: MetaTable;
  keys: KeysTable;
  key_versions: KeyVersionsTable;
  tokens: TokensTable;
  audit: AuditTable;
  audit_refs: AuditRefsTable;
  checkpoints: CheckpointsTable;
  artifacts: ArtifactsTable;
  nonces: NoncesTable;
  revoked_certs: RevokedCertsTable;
  anomaly_clients: AnomalyClientsTable;
  anomaly_blocks: AnomalyBlocksTable;
  approvals: ApprovalsTable;
  approval_votes: ApprovalVotesTable;
  policies: PoliciesTable;
  incidents: IncidentsTable;
  incident_notes: IncidentNotesTable;
  drills: DrillsTable;
}

export type Dialect = "sqlite" | "postgres";

export interface Database {
  readonly db: Kysely<Schema>;
  readonly dialect: Dialect;
  /** Where it lives, for messages (the password of a URL removed). */
  readonly where: string;
  close(): Promise<void>;
  /**
   * Told when a pooled PostgreSQL connection is lost (code and message only: never the URL).
   * `buildServer` routes it to the service log; the default writes one line to stderr.
   */
  onConnectionError?: (e: { code?: string; message: string }) => void;
}
