/**
 * Schema migrations, in code so a single build carries them. Kysely's Migrator records applied
 * migrations and takes a lock, so replicas starting together apply each migration once.
 * Binary values are stored as base64 text so one schema serves SQLite and PostgreSQL.
 */
// kysely 0.28 (the line that supports Node 20; docs/NODE.md) exports the Migrator from its root.
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from "kysely";
import { backfillAuditIndex } from "../audit/index-store.js";
import type { Schema } from "./schema.js";

const initial: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("meta")
      .addColumn("k", "varchar(64)", (c) => c.primaryKey())
      .addColumn("v", "text", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("keys")
      .addColumn("name", "varchar(128)", (c) => c.primaryKey())
      .addColumn("created", "varchar(32)", (c) => c.notNull())
      .addColumn("primary_version", "integer", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("key_versions")
      .addColumn("name", "varchar(128)", (c) => c.notNull().references("keys.name"))
      .addColumn("version", "integer", (c) => c.notNull())
      .addColumn("created", "varchar(32)", (c) => c.notNull())
      .addColumn("state", "varchar(16)", (c) => c.notNull())
      .addColumn("sealed", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("key_versions_pk", ["name", "version"])
      .execute();
    await db.schema
      .createTable("tokens")
      .addColumn("id", "varchar(32)", (c) => c.primaryKey())
      .addColumn("hash", "varchar(64)", (c) => c.notNull().unique())
      .addColumn("scopes", "text", (c) => c.notNull())
      .addColumn("label", "text", (c) => c.notNull())
      .addColumn("created", "varchar(32)", (c) => c.notNull())
      .addColumn("revoked", "varchar(32)")
      .execute();
    await db.schema
      .createTable("audit")
      .addColumn("seq", "bigint", (c) => c.primaryKey())
      .addColumn("entry", "text", (c) => c.notNull())
      .addColumn("hash", "varchar(64)", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("checkpoints")
      .addColumn("seq", "bigint", (c) => c.primaryKey())
      .addColumn("hash", "varchar(64)", (c) => c.notNull())
      .addColumn("signature", "text", (c) => c.notNull())
      .addColumn("ts", "varchar(32)", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("artifacts")
      .addColumn("id", "varchar(64)", (c) => c.primaryKey())
      .addColumn("digest", "varchar(128)", (c) => c.notNull())
      .addColumn("key_name", "varchar(128)", (c) => c.notNull())
      .addColumn("key_version", "integer", (c) => c.notNull())
      .addColumn("labels", "text", (c) => c.notNull())
      .addColumn("location", "text")
      .addColumn("created", "varchar(32)", (c) => c.notNull())
      .execute();
  },
};

/** Single-use attestation nonces (consumed by an atomic delete; expired ones swept). */
const nonces: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("nonces")
      .addColumn("nonce", "varchar(64)", (c) => c.primaryKey())
      .addColumn("expires", "bigint", (c) => c.notNull())
      .execute();
  },
};

/**
 * Key lifecycle: minimum decryption/encryption versions per key, and the time a version
 * scheduled for destruction is erased (ISO 8601; null unless state = 'scheduled').
 * Version states: enabled | disabled | scheduled | destroyed (sealed material erased).
 */
const lifecycle: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable("keys")
      .addColumn("min_decryption_version", "integer", (c) => c.notNull().defaultTo(1))
      .execute();
    await db.schema
      .alterTable("keys")
      .addColumn("min_encryption_version", "integer", (c) => c.notNull().defaultTo(1))
      .execute();
    await db.schema.alterTable("key_versions").addColumn("destroy_after", "varchar(32)").execute();
    await db.schema.alterTable("key_versions").addColumn("state_changed", "varchar(32)").execute();
  },
};

/**
 * Client certificates revoked by SHA-256 fingerprint of their DER (hex, lowercase), shared by
 * every replica (`service cert revoke`); a row is never deleted (revocation is permanent).
 */
const revokedCerts: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("revoked_certs")
      .addColumn("fingerprint", "varchar(64)", (c) => c.primaryKey())
      .addColumn("reason", "text", (c) => c.notNull())
      .addColumn("revoked", "varchar(32)", (c) => c.notNull())
      .execute();
  },
};

/**
 * Anomaly detection (docs/SERVICE.md, "Anomaly detection and alerts"): the clients each
 * principal has been seen from (first-seen alerts survive restarts and are shared by
 * replicas; `id` = SHA-256 of the tuple, so an insert that conflicts means "already known")
 * and the principals blocked by auto-block until an admin unblocks them.
 */
const anomaly: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("anomaly_clients")
      .addColumn("id", "varchar(64)", (c) => c.primaryKey())
      .addColumn("principal", "varchar(512)", (c) => c.notNull())
      .addColumn("source", "varchar(64)", (c) => c.notNull())
      .addColumn("cert", "varchar(128)", (c) => c.notNull())
      .addColumn("workload", "varchar(512)", (c) => c.notNull())
      .addColumn("first_seen", "varchar(32)", (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex("anomaly_clients_principal")
      .on("anomaly_clients")
      .column("principal")
      .execute();
    await db.schema
      .createTable("anomaly_blocks")
      .addColumn("principal", "varchar(512)", (c) => c.primaryKey())
      .addColumn("since", "varchar(32)", (c) => c.notNull())
      .addColumn("reason", "text", (c) => c.notNull())
      .execute();
  },
};

/**
 * Dual control (M-of-N approvals): pending requests, one vote per (request, principal) — the
 * primary key keeps approvers distinct across replicas — and the versioned Cedar policy sets
 * approved over the API (the newest version is the active set).
 */
const approvals: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("approvals")
      .addColumn("id", "varchar(40)", (c) => c.primaryKey())
      .addColumn("operation", "varchar(16)", (c) => c.notNull())
      .addColumn("params", "text", (c) => c.notNull())
      .addColumn("requester", "varchar(512)", (c) => c.notNull())
      .addColumn("required", "integer", (c) => c.notNull())
      .addColumn("state", "varchar(16)", (c) => c.notNull())
      .addColumn("created", "varchar(32)", (c) => c.notNull())
      .addColumn("expires", "bigint", (c) => c.notNull())
      .addColumn("updated", "varchar(32)", (c) => c.notNull())
      .addColumn("outcome", "text")
      .addColumn("result", "text")
      .execute();
    await db.schema
      .createTable("approval_votes")
      .addColumn("approval_id", "varchar(40)", (c) => c.notNull().references("approvals.id"))
      .addColumn("principal", "varchar(512)", (c) => c.notNull())
      .addColumn("vote", "varchar(8)", (c) => c.notNull())
      .addColumn("at", "varchar(32)", (c) => c.notNull())
      .addPrimaryKeyConstraint("approval_votes_pk", ["approval_id", "principal"])
      .execute();
    await db.schema
      .createTable("policies")
      .addColumn("version", "integer", (c) => c.primaryKey())
      .addColumn("policies", "text", (c) => c.notNull())
      .addColumn("digest", "varchar(64)", (c) => c.notNull())
      .addColumn("approval_id", "varchar(40)")
      .addColumn("created", "varchar(32)", (c) => c.notNull())
      .execute();
  },
};

/**
 * Key metadata for Cedar (labels as canonical JSON like artifact labels, sensitivity by name;
 * defaults so keys created before keep working as unlabelled and "unspecified"), and the
 * SHA-256 of the wrapped file key of the stanza an artifact was sealed with (unique: the first
 * registration of a stanza wins; null for artifacts registered without one).
 */
const keyMetadata: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable("keys")
      .addColumn("labels", "text", (c) => c.notNull().defaultTo("{}"))
      .execute();
    await db.schema
      .alterTable("keys")
      .addColumn("sensitivity", "varchar(16)", (c) => c.notNull().defaultTo("unspecified"))
      .execute();
    await db.schema.alterTable("artifacts").addColumn("stanza_digest", "varchar(71)").execute();
    await db.schema
      .createIndex("artifacts_stanza_digest")
      .unique()
      .on("artifacts")
      .column("stanza_digest")
      .execute();
  },
};

/**
 * The audit index (audit/index-fields.ts): time, action, outcome and principal as columns of
 * `audit`, the keys and artifacts each entry names in `audit_refs`; entries written before
 * are indexed here from their canonical text, a page at a time.
 */
const auditIndex: Migration = {
  async up(db: Kysely<unknown>) {
    for (const [name, type] of [
      ["ts", "varchar(32)"],
      ["action", "varchar(64)"],
      ["outcome", "varchar(16)"],
      ["principal", "text"],
    ] as const) {
      await db.schema.alterTable("audit").addColumn(name, type).execute();
    }
    await db.schema
      .createTable("audit_refs")
      .addColumn("seq", "bigint", (c) => c.notNull())
      .addColumn("kind", "varchar(16)", (c) => c.notNull())
      .addColumn("ref", "varchar(128)", (c) => c.notNull())
      .addPrimaryKeyConstraint("audit_refs_pk", ["kind", "ref", "seq"])
      .execute();
    for (const column of ["principal", "action", "ts"] as const) {
      await db.schema.createIndex(`audit_${column}`).on("audit").columns([column, "seq"]).execute();
    }
    await backfillAuditIndex(db as Kysely<Schema>);
  },
};

/**
 * Rotation periods of service keys (`PATCH /v1/keys/:name {rotationPeriod}`): whole seconds,
 * null for none, as `rotation_period` of local keystore keys. `POST /v1/rotate-due`
 * rotates the keys whose primary version is at least that old.
 */
const keyRotation: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable("keys").addColumn("rotation_period", "bigint").execute();
  },
};

/**
 * Alerts and outcome filters (`GET /v1/audit?outcome=`, the console's alerts and overview) read
 * through an index on (outcome, seq) instead of walking the whole log in seq order.
 */
const auditOutcomeIndex: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.createIndex("audit_outcome").on("audit").columns(["outcome", "seq"]).execute();
  },
};

/**
 * Incidents and drills on the service (the console's "open, follow and close an incident; drill
 * history"): the incident record, its timeline notes, and drill results sent by
 * `drill run --server`. Listed newest first, hence the indexes on time.
 */
const incidentsAndDrills: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("incidents")
      .addColumn("id", "varchar(40)", (c) => c.primaryKey())
      .addColumn("title", "text", (c) => c.notNull())
      .addColumn("severity", "varchar(16)", (c) => c.notNull())
      .addColumn("state", "varchar(16)", (c) => c.notNull())
      .addColumn("scope", "text", (c) => c.notNull())
      .addColumn("summary", "text", (c) => c.notNull())
      .addColumn("opened", "varchar(32)", (c) => c.notNull())
      .addColumn("opened_by", "varchar(512)", (c) => c.notNull())
      .addColumn("closed", "varchar(32)")
      .addColumn("closed_by", "varchar(512)")
      .addColumn("resolution", "text")
      .execute();
    await db.schema
      .createIndex("incidents_opened")
      .on("incidents")
      .columns(["opened", "id"])
      .execute();
    await db.schema
      .createTable("incident_notes")
      .addColumn("id", "varchar(40)", (c) => c.primaryKey())
      .addColumn("incident_id", "varchar(40)", (c) => c.notNull().references("incidents.id"))
      .addColumn("at", "varchar(32)", (c) => c.notNull())
      .addColumn("author", "varchar(512)", (c) => c.notNull())
      .addColumn("text", "text", (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex("incident_notes_incident")
      .on("incident_notes")
      .columns(["incident_id", "at"])
      .execute();
    await db.schema
      .createTable("drills")
      .addColumn("id", "varchar(40)", (c) => c.primaryKey())
      .addColumn("scenario", "varchar(64)", (c) => c.notNull())
      .addColumn("result", "varchar(8)", (c) => c.notNull())
      .addColumn("detect_ms", "double precision")
      .addColumn("contain_ms", "double precision")
      .addColumn("duration_ms", "double precision", (c) => c.notNull())
      .addColumn("time", "varchar(32)", (c) => c.notNull())
      .addColumn("version", "varchar(32)", (c) => c.notNull())
      .addColumn("database", "varchar(16)", (c) => c.notNull())
      .addColumn("checks_passed", "integer", (c) => c.notNull())
      .addColumn("checks_total", "integer", (c) => c.notNull())
      .addColumn("failed", "text", (c) => c.notNull())
      .addColumn("error", "text")
      .addColumn("recorded", "varchar(32)", (c) => c.notNull())
      .addColumn("recorded_by", "varchar(512)", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("drills_time").on("drills").columns(["time", "id"]).execute();
  },
};

/**
 * Artifact lineage: a reseal registers the new file as the successor of the old artifact
 * (`POST /v1/artifacts/successors`): the new row names the old in `supersedes`, the old row
 * gets `superseded_by` (its newest successor) and `superseded_at`; nothing is deleted. A
 * registration that carried the header records its digest (`header_digest`), so an incident's
 * assessment can tell a resealed file from the released one at the same location.
 */
const artifactLineage: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable("artifacts").addColumn("supersedes", "varchar(64)").execute();
    await db.schema.alterTable("artifacts").addColumn("superseded_by", "varchar(64)").execute();
    await db.schema.alterTable("artifacts").addColumn("superseded_at", "varchar(32)").execute();
    await db.schema.alterTable("artifacts").addColumn("header_digest", "varchar(80)").execute();
    await db.schema
      .createIndex("artifacts_supersedes")
      .on("artifacts")
      .column("supersedes")
      .execute();
  },
};

const MIGRATIONS: Record<string, Migration> = {
  "0001_initial": initial,
  "0002_nonces": nonces,
  "0003_lifecycle": lifecycle,
  "0004_revoked_certs": revokedCerts,
  "0005_approvals": approvals,
  "0006_anomaly": anomaly,
  "0007_key_metadata": keyMetadata,
  "0008_audit_index": auditIndex,
  "0009_key_rotation": keyRotation,
  "0010_audit_outcome_index": auditOutcomeIndex,
  "0011_incidents_drills": incidentsAndDrills,
  "0012_artifact_lineage": artifactLineage,
};

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS };

export async function migrate(db: Kysely<unknown>, dialect: "sqlite" | "postgres"): Promise<void> {
  // Kysely looks for its bookkeeping tables in every schema unless told which one: with
  // several schemas on one server (tenants, parallel tests) it would find another schema's
  // lock table and fail. Ours is the first schema of the search_path.
  const migrationTableSchema =
    dialect === "postgres"
      ? (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]?.s
      : undefined;
  const { error, results } = await new Migrator({
    db,
    provider,
    ...(migrationTableSchema ? { migrationTableSchema } : {}),
  }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "?";
    throw new Error(`database migration ${failed} failed`, { cause: error });
  }
}
