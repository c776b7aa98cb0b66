/**
 * Artifact inventory: what was sealed (plaintext SHA-256), under which key version, with which
 * labels and where it lives. Rows of the `artifacts` table (migration 0001); `labels` is
 * JSON.stringify of the label map with its keys sorted, so one label `k=v` is found by the exact
 * substring `"k":"v"` (instr/strpos, no LIKE wildcards or case folding): inside a JSON string
 * every `"` is escaped, so the unescaped pattern only matches a whole key and a whole value.
 */
import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import { pageOf } from "../db/page.js";
import type { ArtifactsTable, Database } from "../db/schema.js";
import { writeTransaction } from "../db/write-transaction.js";
import { ServiceError } from "../errors.js";
import { ARTIFACT_ID_PATTERN, DIGEST_PATTERN, LABEL_KEY_PATTERN } from "../patterns.js";

export { ARTIFACT_ID_PATTERN, DIGEST_PATTERN, LABEL_KEY_PATTERN };
/** A value of the reserved `sensitivity` label must name a level (authz/attributes.ts). */
export const SENSITIVITY_LABEL = "sensitivity";
export const LIST_MAX = 1000;

export interface Artifact {
  id: string;
  digest: string;
  key: string;
  version: number;
  labels: Record<string, string>;
  location?: string;
  created: string;
  /** Lineage (a reseal): the artifact this one replaced. */
  supersedes?: string;
  /** The newest artifact that replaced this one (its file is gone), and when. */
  supersededBy?: string;
  superseded?: string;
  /** SHA-256 of the header bytes the registration carried (as `reseal` reports it). */
  headerDigest?: string;
}

/** What a stanza lookup returns (the row's authorization attributes). */
export interface StanzaArtifact {
  id: string;
  key: string;
  version: number;
  digest: string;
  labels: Record<string, string>;
}

export interface ArtifactQuery {
  key?: string;
  label?: { k: string; v: string };
  limit: number;
  /** The id after which the page starts (decoded cursor). */
  after?: string;
}

export function canonicalLabels(labels: Record<string, string>): string {
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(labels).sort()) sorted[k] = labels[k] as string;
  return JSON.stringify(sorted);
}

export function newArtifactId(): string {
  return `art_${randomBytes(16).toString("hex")}`;
}

export function encodeCursor(id: string): string {
  return Buffer.from(id, "utf8").toString("base64url");
}

/**
 * Where a page starts. Any base64url text the route's schema admits is a cursor: it only says
 * after which id (compared as a string) the page begins, so a made-up one reads a page of what
 * the caller may list anyway — refusing some of them would make the schema lie.
 */
export function decodeCursor(c: string): string {
  return Buffer.from(c, "base64url").toString("utf8");
}

export class ArtifactRepo {
  constructor(private readonly d: Database) {}

  async register(
    a: Omit<Artifact, "id" | "created" | "supersededBy" | "superseded"> & {
      id?: string;
      stanzaDigest?: string;
    },
  ): Promise<Artifact> {
    const row = rowOf(a);
    // No conflict target: a taken id and a taken stanza digest (unique index) both do nothing.
    const r = await this.d.db
      .insertInto("artifacts")
      .values(row)
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0n) !== 1) {
      await this.conflict(row);
      throw new ServiceError(
        409,
        "conflict",
        `artifact ${row.id} was not registered (taken meanwhile)`,
      );
    }
    return fromRow(row);
  }

  /**
   * Registers `next` as the successor of artifact `old` (a reseal): in one transaction the new
   * row (naming `old` in `supersedes`) is inserted and `old` marked superseded by it, only while
   * `old` is still registered with the stanza `from` the caller holds. A second successor of the
   * same artifact (a rerun after a crash between registration and rename) becomes its newest
   * successor; the earlier one stays, naming `old`, for the audit trail. Null when `old` left
   * `from` meanwhile.
   */
  async succeed(
    old: string,
    from: string,
    next: Omit<Artifact, "id" | "created" | "supersedes" | "supersededBy" | "superseded"> & {
      stanzaDigest: string;
    },
  ): Promise<Artifact | null> {
    const row = rowOf({ ...next, supersedes: old });
    try {
      return await writeTransaction(this.d, async (trx) => {
        const moved = await trx
          .updateTable("artifacts")
          .set({ superseded_by: row.id, superseded_at: row.created })
          .where("id", "=", old)
          .where("stanza_digest", "=", from)
          .executeTakeFirst();
        if (Number(moved.numUpdatedRows) !== 1) return null;
        await trx.insertInto("artifacts").values(row).execute();
        return fromRow(row);
      });
    } catch (e) {
      await this.conflict(row); // the unique index: the new stanza is registered already
      throw e;
    }
  }

  /** The 409 for a row that could not be inserted (its id or stanza digest is taken). */
  private async conflict(row: ArtifactsTable): Promise<void> {
    const taken = await this.d.db
      .selectFrom("artifacts")
      .select("id")
      .where("id", "=", row.id)
      .executeTakeFirst();
    if (!taken && row.stanza_digest !== null && !(await this.byStanza(row.stanza_digest))) return;
    throw new ServiceError(
      409,
      "conflict",
      taken
        ? `an artifact with id ${row.id} is already registered`
        : `the stanza ${row.stanza_digest} is already registered with another artifact (the first registration of a stanza wins)`,
    );
  }

  /** The artifacts that replaced `id` (reseals of it), oldest first. */
  async successors(id: string): Promise<Artifact[]> {
    const rows = await this.d.db
      .selectFrom("artifacts")
      .selectAll()
      .where("supersedes", "=", id)
      .orderBy("created")
      .orderBy("id")
      .execute();
    return rows.map(fromRow);
  }

  /**
   * Moves a registration from its stanza to the stanza a rewrap made of it (same file key,
   * checked by the caller): one conditional UPDATE on the current digest, so two campaigns
   * racing move it once and a registration that moved on meanwhile is not overwritten. False
   * when the artifact is no longer on `from`; 409 when `to` is registered already.
   */
  async restanza(id: string, from: string, to: string, version: number): Promise<boolean> {
    const taken = async () => {
      if (await this.byStanza(to))
        throw new ServiceError(409, "conflict", `the stanza ${to} is already registered`);
    };
    await taken();
    try {
      const r = await this.d.db
        .updateTable("artifacts")
        .set({ stanza_digest: to, key_version: version })
        .where("id", "=", id)
        .where("stanza_digest", "=", from)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    } catch (e) {
      await taken(); // the unique index: registered by someone else in between
      throw e;
    }
  }

  /** The registered stanza digest of an artifact (null: registered without one). */
  async stanzaOf(id: string): Promise<string | null> {
    const r = await this.d.db
      .selectFrom("artifacts")
      .select("stanza_digest")
      .where("id", "=", id)
      .executeTakeFirst();
    if (!r) throw new ServiceError(404, "not_found", `no artifact ${id}`);
    return r.stanza_digest;
  }

  /** The artifact registered with this stanza digest (indexed), or null. */
  async byStanza(stanzaDigest: string): Promise<StanzaArtifact | null> {
    const r = await this.d.db
      .selectFrom("artifacts")
      .select(["id", "key_name", "key_version", "digest", "labels"])
      .where("stanza_digest", "=", stanzaDigest)
      .executeTakeFirst();
    if (!r) return null;
    return {
      id: r.id,
      key: r.key_name,
      version: Number(r.key_version),
      digest: r.digest,
      labels: JSON.parse(r.labels),
    };
  }

  async show(id: string): Promise<Artifact> {
    const r = await this.d.db
      .selectFrom("artifacts")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    if (!r) throw new ServiceError(404, "not_found", `no artifact with id ${id}`);
    return fromRow(r);
  }

  /** One page, ordered by id; `next` is the cursor of the following page, if there is one. */
  async list(q: ArtifactQuery): Promise<{ artifacts: Artifact[]; next?: string }> {
    let s = this.d.db.selectFrom("artifacts").selectAll();
    if (q.key !== undefined) s = s.where("key_name", "=", q.key);
    if (q.label) {
      const needle = JSON.stringify({ [q.label.k]: q.label.v }).slice(1, -1);
      const fn = this.d.dialect === "postgres" ? sql`strpos` : sql`instr`;
      s = s.where(sql<boolean>`${fn}(${sql.ref("labels")}, ${needle}) > 0`);
    }
    if (q.after !== undefined) s = s.where("id", ">", q.after);
    const rows = await s
      .orderBy("id")
      .limit(q.limit + 1)
      .execute();
    return pageOf("artifacts", rows, q.limit, fromRow, (a) => encodeCursor(a.id));
  }
}

function rowOf(
  a: Omit<Artifact, "id" | "created" | "supersededBy" | "superseded"> & {
    id?: string;
    stanzaDigest?: string;
  },
): ArtifactsTable {
  return {
    id: a.id ?? newArtifactId(),
    digest: a.digest,
    key_name: a.key,
    key_version: a.version,
    labels: canonicalLabels(a.labels),
    location: a.location ?? null,
    created: new Date().toISOString(),
    stanza_digest: a.stanzaDigest ?? null,
    supersedes: a.supersedes ?? null,
    superseded_by: null,
    superseded_at: null,
    header_digest: a.headerDigest ?? null,
  };
}

function fromRow(r: Omit<ArtifactsTable, "stanza_digest">): Artifact {
  return {
    id: r.id,
    digest: r.digest,
    key: r.key_name,
    version: Number(r.key_version),
    labels: JSON.parse(r.labels),
    ...(r.location !== null ? { location: r.location } : {}),
    created: r.created,
    ...(r.supersedes !== null ? { supersedes: r.supersedes } : {}),
    ...(r.superseded_by !== null ? { supersededBy: r.superseded_by } : {}),
    ...(r.superseded_at !== null ? { superseded: r.superseded_at } : {}),
    ...(r.header_digest !== null ? { headerDigest: r.header_digest } : {}),
  };
}
