/** Data access for KEKs and their versions (no crypto here: material stays sealed). */
import type { Database } from "../db/schema.js";

export interface KeyRow {
  name: string;
  created: string;
  primaryVersion: number;
  versions: { version: number; created: string; state: string }[];
}

export class KeyRepo {
  constructor(private readonly d: Database) {}

  async insertKey(name: string, created: string, sealed: string): Promise<boolean> {
    return this.d.db.transaction().execute(async (trx) => {
      const r = await trx
        .insertInto("keys")
        .values({ name, created, primary_version: 1 })
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

  /** Adds version primary+1 and makes it primary; `seal` gets the new version number. */
  async addVersion(
    name: string,
    created: string,
    seal: (version: number) => string,
  ): Promise<number | null> {
    return this.d.db.transaction().execute(async (trx) => {
      // Lock the key's row (PostgreSQL) so two replicas rotating at once get distinct versions.
      let lock = trx.selectFrom("keys").select("name").where("name", "=", name);
      if (this.d.dialect === "postgres") lock = lock.forUpdate() as typeof lock;
      if (!(await lock.executeTakeFirst())) return null;
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

  async list(): Promise<KeyRow[]> {
    const keys = await this.d.db.selectFrom("keys").selectAll().orderBy("name").execute();
    const versions = await this.d.db
      .selectFrom("key_versions")
      .select(["name", "version", "created", "state"])
      .orderBy("name")
      .orderBy("version")
      .execute();
    return keys.map((k) => ({
      name: k.name,
      created: k.created,
      primaryVersion: Number(k.primary_version),
      versions: versions
        .filter((v) => v.name === k.name)
        .map((v) => ({ version: Number(v.version), created: v.created, state: v.state })),
    }));
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
