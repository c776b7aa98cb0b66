/** Data access for KEKs and their versions (no crypto here: material stays sealed). */
import { rotationDue } from "../../keys/rotation-due.js";
import { canonicalLabels } from "../artifacts/repo.js";
import type { Database } from "../db/schema.js";
import { writeTransaction } from "../db/write-transaction.js";

export interface VersionRow {
  version: number;
  created: string;
  state: string;
  destroyAfter?: string;
}

export interface KeyRow {
  name: string;
  created: string;
  primaryVersion: number;
  minDecryptionVersion: number;
  minEncryptionVersion: number;
  labels: Record<string, string>;
  sensitivity: string;
  /** Seconds between rotations, or null (none). */
  rotationPeriod: number | null;
  /** When the primary version reaches the rotation period (ISO 8601), or null (no period). */
  rotationDue: string | null;
  versions: VersionRow[];
}

/** Key metadata policies see (labels, sensitivity), set at creation or by PATCH. */
export interface KeyMetadata {
  labels: Record<string, string>;
  sensitivity: string;
}

/** What unwrap and wrap check: a key's versions and limits (no material). */
export interface KeyMeta {
  primary: number;
  minDecryption: number;
  minEncryption: number;
  versions: Map<number, { state: string; destroyAfter: string | null }>;
  attrs: KeyMetadata;
}

export class KeyRepo {
  constructor(private readonly d: Database) {}

  async insertKey(
    name: string,
    created: string,
    sealed: string,
    m: KeyMetadata,
    rotationPeriod: number | null = null,
  ): Promise<boolean> {
    return writeTransaction(this.d, async (trx) => {
      const r = await trx
        .insertInto("keys")
        .values({
          name,
          created,
          primary_version: 1,
          labels: canonicalLabels(m.labels),
          sensitivity: m.sensitivity,
          ...(rotationPeriod !== null ? { rotation_period: rotationPeriod } : {}),
        })
        .onConflict((oc) => oc.column("name").doNothing())
        .executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0) === 0) return false;
      await trx
        .insertInto("key_versions")
        .values({ name, version: 1, created, state: "enabled", sealed })
        .execute();
      return true;
    });
  }

  /**
   * Adds version primary+1 and makes it primary; `seal` gets the new version number. With
   * `ifPrimary`, only while the primary is still that version (checked under the row lock):
   * 0 when another rotation got there first, so two replicas rotating a due key at once make
   * one new version.
   */
  async addVersion(
    name: string,
    created: string,
    seal: (version: number) => string,
    ifPrimary?: number,
  ): Promise<number | null> {
    return writeTransaction(this.d, async (trx) => {
      // Lock the key's row (PostgreSQL) so two replicas rotating at once get distinct versions
      // (SQLite: BEGIN IMMEDIATE already serialises writers).
      let lock = trx
        .selectFrom("keys")
        .select(["name", "primary_version"])
        .where("name", "=", name);
      if (this.d.dialect === "postgres") lock = lock.forUpdate() as typeof lock;
      const row = await lock.executeTakeFirst();
      if (!row) return null;
      if (ifPrimary !== undefined && Number(row.primary_version) !== ifPrimary) return 0;
      const top = await trx
        .selectFrom("key_versions")
        .select((eb) => eb.fn.max("version").as("v"))
        .where("name", "=", name)
        .executeTakeFirst();
      if (top?.v === null || top?.v === undefined) return null;
      const version = Number(top.v) + 1;
      await trx
        .insertInto("key_versions")
        .values({ name, version, created, state: "enabled", sealed: seal(version) })
        .execute();
      await trx
        .updateTable("keys")
        .set({ primary_version: version })
        .where("name", "=", name)
        .execute();
      return version;
    });
  }

  async list(name?: string): Promise<KeyRow[]> {
    let kq = this.d.db.selectFrom("keys").selectAll().orderBy("name");
    let vq = this.d.db
      .selectFrom("key_versions")
      .select(["name", "version", "created", "state", "destroy_after"])
      .orderBy("name")
      .orderBy("version");
    if (name !== undefined) {
      kq = kq.where("name", "=", name);
      vq = vq.where("name", "=", name);
    }
    const keys = await kq.execute();
    const versions = await vq.execute();
    return keys.map((k) => {
      const row = {
        name: k.name,
        created: k.created,
        primaryVersion: Number(k.primary_version),
        minDecryptionVersion: Number(k.min_decryption_version),
        minEncryptionVersion: Number(k.min_encryption_version),
        labels: JSON.parse(k.labels),
        sensitivity: k.sensitivity,
        // bigint: PostgreSQL answers a string.
        rotationPeriod: k.rotation_period === null ? null : Number(k.rotation_period),
        versions: versions
          .filter((v) => v.name === k.name)
          .map((v) => ({
            version: Number(v.version),
            created: v.created,
            state: v.state,
            ...(v.destroy_after ? { destroyAfter: v.destroy_after } : {}),
          })),
      };
      // The key's own period only: the service has no default (doctor and inventory apply theirs).
      return { ...row, rotationDue: rotationDue(row, null)?.due ?? null };
    });
  }

  async meta(name: string): Promise<KeyMeta | null> {
    const k = await this.d.db
      .selectFrom("keys")
      .select([
        "primary_version",
        "min_decryption_version",
        "min_encryption_version",
        "labels",
        "sensitivity",
      ])
      .where("name", "=", name)
      .executeTakeFirst();
    if (!k) return null;
    const vs = await this.d.db
      .selectFrom("key_versions")
      .select(["version", "state", "destroy_after"])
      .where("name", "=", name)
      .execute();
    return {
      primary: Number(k.primary_version),
      minDecryption: Number(k.min_decryption_version),
      minEncryption: Number(k.min_encryption_version),
      versions: new Map(
        vs.map((v) => [Number(v.version), { state: v.state, destroyAfter: v.destroy_after }]),
      ),
      attrs: { labels: JSON.parse(k.labels), sensitivity: k.sensitivity },
    };
  }

  /** Sets a version's state if it is currently one of `from`; false if not (or no such version). */
  async setState(
    name: string,
    version: number,
    from: string[],
    to: string,
    at: string,
    destroyAfter: string | null = null,
  ): Promise<boolean> {
    const r = await this.d.db
      .updateTable("key_versions")
      .set({ state: to, state_changed: at, destroy_after: destroyAfter })
      .where("name", "=", name)
      .where("version", "=", version)
      .where("state", "in", from)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async update(
    name: string,
    set: {
      min_decryption_version?: number;
      min_encryption_version?: number;
      labels?: Record<string, string>;
      sensitivity?: string;
      rotation_period?: number | null;
    },
  ): Promise<void> {
    const { labels, ...rest } = set;
    await this.d.db
      .updateTable("keys")
      .set({ ...rest, ...(labels ? { labels: canonicalLabels(labels) } : {}) })
      .where("name", "=", name)
      .execute();
  }

  /** Scheduled versions whose waiting period ended at `now` (ISO). */
  async due(now: string): Promise<{ name: string; version: number }[]> {
    const rows = await this.d.db
      .selectFrom("key_versions")
      .select(["name", "version"])
      .where("state", "=", "scheduled")
      .where("destroy_after", "<=", now)
      .execute();
    return rows.map((r) => ({ name: r.name, version: Number(r.version) }));
  }

  /** Erases the sealed material of a due scheduled version (crypto-shredding); false if not due. */
  async destroy(name: string, version: number, now: string): Promise<boolean> {
    const r = await this.d.db
      .updateTable("key_versions")
      .set({ state: "destroyed", sealed: "", state_changed: now, destroy_after: null })
      .where("name", "=", name)
      .where("version", "=", version)
      .where("state", "=", "scheduled")
      .where("destroy_after", "<=", now)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async primary(name: string): Promise<number | null> {
    const r = await this.d.db
      .selectFrom("keys")
      .select("primary_version")
      .where("name", "=", name)
      .executeTakeFirst();
    return r ? Number(r.primary_version) : null;
  }

  async sealed(name: string, version: number): Promise<{ sealed: string; state: string } | null> {
    const r = await this.d.db
      .selectFrom("key_versions")
      .select(["sealed", "state"])
      .where("name", "=", name)
      .where("version", "=", version)
      .executeTakeFirst();
    return r ?? null;
  }
}
