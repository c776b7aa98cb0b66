/**
 * A transaction that writes. On SQLite it starts with BEGIN IMMEDIATE, taking the write lock
 * before its first read: two processes on one database file then wait for each other (the
 * busy timeout) instead of one failing with SQLITE_BUSY when the snapshot its read saw went
 * stale before its write. On PostgreSQL it is an ordinary transaction (callers that must be
 * serialised across replicas take an advisory lock inside it).
 */
import { type Kysely, sql } from "kysely";
import type { Database, Schema } from "./schema.js";

export async function writeTransaction<T>(
  d: Database,
  fn: (db: Kysely<Schema>) => Promise<T>,
): Promise<T> {
  if (d.dialect !== "sqlite") return d.db.transaction().execute(fn);
  return d.db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    let r: T;
    try {
      r = await fn(conn);
    } catch (e) {
      await sql`rollback`.execute(conn).catch(() => {});
      throw e;
    }
    await sql`commit`.execute(conn);
    return r;
  });
}
