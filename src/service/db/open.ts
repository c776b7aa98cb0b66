/**
 * Opens the service database from a URL and applies migrations:
 *   sqlite:PATH            embedded SQLite (WAL, synchronous=FULL: a commit is durable)
 *   sqlite::memory:        in-memory (tests)
 *   postgres://...[?schema=NAME]   PostgreSQL; `schema` (ours, stripped before connecting) sets
 *                          the search_path, so tests and tenants can use a schema of their own.
 */
import BetterSqlite3 from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect } from "kysely";
import pg from "pg";
import { fail, isTensorSealError } from "../../format/errors.js";
import { migrate } from "./migrations.js";
import type { Database, Schema } from "./schema.js";
import { dbErrorSummary } from "./unavailable.js";

const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openDatabase(
  url: string,
  opts: { poolSize?: number } = {},
): Promise<Database> {
  const d = url.startsWith("sqlite:")
    ? cannotOpen(url, () => openSqlite(url.slice("sqlite:".length)))
    : /^postgres(ql)?:\/\//.test(url)
      ? openPostgres(url, opts.poolSize ?? 10)
      : fail(
          "E_USAGE",
          `database URL must be sqlite:PATH or postgres://..., got ${redactUrl(url)}`,
        );
  try {
    await migrate(d.db as Kysely<unknown>, d.dialect);
  } catch (e) {
    await d.close().catch(() => {});
    cannotOpen(url, () => {
      throw e;
    });
  }
  return d;
}

/**
 * A database that cannot be opened (a missing directory, a file that is not SQLite, a refused
 * or misconfigured PostgreSQL) is E_IO naming the redacted URL, with the error's own message
 * only (dbErrorSummary: nothing attached to it, no connection settings).
 */
function cannotOpen<T>(url: string, open: () => T): T {
  try {
    return open();
  } catch (e) {
    if (isTensorSealError(e)) throw e;
    return fail("E_IO", `cannot open the database ${redactUrl(url)}: ${dbErrorSummary(e).message}`);
  }
}

function openSqlite(path: string): Database {
  if (path.length === 0)
    fail("E_USAGE", "sqlite: needs a path (sqlite:/var/lib/tensorseal/service.db)");
  const sqlite = new BetterSqlite3(path);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("synchronous = FULL");
  sqlite.pragma("busy_timeout = 5000");
  sqlite.pragma("foreign_keys = ON");
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { db, dialect: "sqlite", where: `sqlite:${path}`, close: () => db.destroy() };
}

function openPostgres(url: string, max: number): Database {
  const u = new URL(url);
  const schema = u.searchParams.get("schema");
  u.searchParams.delete("schema");
  if (schema !== null && !SCHEMA_PATTERN.test(schema)) {
    fail("E_USAGE", `schema ${JSON.stringify(schema)} must match ${SCHEMA_PATTERN}`);
  }
  const pool = new pg.Pool({
    connectionString: u.toString(),
    max,
    // While the server is down or restarting, a request waits at most this long for a
    // connection, then fails (503), instead of queueing without bound.
    connectionTimeoutMillis: 5000,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
    // bigint (int8) columns back as numbers: audit sequence numbers stay far below 2^53.
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as never,
    },
  });
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  const d: Database = {
    db,
    dialect: "postgres",
    where: redactUrl(url),
    close: () => db.destroy(),
    onConnectionError: (e) =>
      process.stderr.write(`tensorseal: database connection lost: ${e.message}\n`),
  };
  // A client whose server goes away (restart, crash) emits 'error'; with no listener that
  // event would crash the process. pg-pool listens only while a client is idle, and Kysely
  // never does while one is checked out (inside a query or transaction), so every client gets
  // its own listener. The failed query still rejects (the request answers 503), the dead client
  // is dropped on release, and the next query opens a new connection.
  pool.on("connect", (client) => {
    client.on("error", (e) => d.onConnectionError?.(dbErrorSummary(e)));
  });
  pool.on("error", () => {}); // the idle case, already reported by the client's own listener
  return d;
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.split("?")[0]!;
  }
}
