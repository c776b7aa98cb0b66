/** Databases and servers for the key service tests: SQLite in a temp dir, PostgreSQL in a fresh schema. */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import pg from "pg";
import {
  buildServer,
  type Database,
  type DevCa,
  type DevTls,
  ensureDevTls,
  loadDevCa,
  openDatabase,
  type ServerOptions,
  TokenRepo,
} from "../../src/service/index.js";
import type { Sandbox } from "../cli/helpers.js";

export const PG_URL = process.env.TENSORSEAL_TEST_PG_URL ?? "postgres://root@127.0.0.1:5432/test";
const requireAll = process.env.TENSORSEAL_REQUIRE_ALL === "1";

export interface TestDb {
  url: string;
  open(): Promise<Database>;
  drop(): Promise<void>;
}

export function sqliteDb(): TestDb {
  const dir = mkdtempSync(join(tmpdir(), "tensorseal-svc-"));
  const url = `sqlite:${join(dir, "service.db")}`;
  return {
    url,
    open: () => openDatabase(url),
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A fresh schema on the test PostgreSQL; a skip reason when unreachable (a failure in CI). */
export async function pgDb(): Promise<TestDb | string> {
  const schema = `ts_test_${randomBytes(6).toString("hex")}`;
  // Required (CI): a loaded machine may be slow to answer; it must not turn into a failure.
  const c = new pg.Client({
    connectionString: PG_URL,
    connectionTimeoutMillis: requireAll ? 30_000 : 3000,
  });
  try {
    await c.connect();
    await c.query(`create schema ${schema}`);
  } catch (e) {
    await c.end().catch(() => {});
    const why = `PostgreSQL at ${PG_URL} unreachable (${(e as Error).message}): set TENSORSEAL_TEST_PG_URL`;
    if (requireAll) throw new Error(`TENSORSEAL_REQUIRE_ALL=1 but ${why}`);
    return why;
  }
  await c.end();
  const sep = PG_URL.includes("?") ? "&" : "?";
  const url = `${PG_URL}${sep}schema=${schema}`;
  return {
    url,
    open: () => openDatabase(url),
    async drop() {
      const c2 = new pg.Client({ connectionString: PG_URL });
      await c2.connect();
      await c2.query(`drop schema ${schema} cascade`);
      await c2.end();
    },
  };
}

/** A suite's database, open from its `before` to its `after`; `skip` says why when unreachable. */
export interface SuiteDb {
  tdb: TestDb;
  db: Database;
  /** The reason PostgreSQL is unreachable, for `t.skip(suite.skip)` in each test; false otherwise. */
  skip: string | false;
}

/**
 * `describe("<name> (sqlite)")` and `describe("<name> (postgres)")`, each on a fresh database
 * opened before the suite's own `before` hooks and closed and dropped after its `after` hooks.
 */
export function describeEachDb(name: string, body: (suite: SuiteDb) => void): void {
  for (const kind of ["sqlite", "postgres"] as const) {
    describe(`${name} (${kind})`, () => {
      const suite = { skip: false } as SuiteDb;
      before(async () => {
        const t = kind === "sqlite" ? sqliteDb() : await pgDb();
        if (typeof t === "string") {
          suite.skip = t;
          return;
        }
        suite.tdb = t;
        suite.db = await t.open();
      });
      body(suite);
      // Registered after the body's hooks, so it runs after them (node:test runs hooks in order).
      after(async () => {
        if (suite.skip) return;
        await suite.db.close();
        await suite.tdb.drop();
      });
    });
  }
}

/**
 * `describe("<name> on SQLite")` and `describe("<name> on PostgreSQL")` for suites whose tests
 * each want a fresh database: `make()` creates one (the test opens and drops it); `skip` says
 * why PostgreSQL is unreachable, for `test(..., { skip }, ...)`.
 */
export function describeEachFreshDb(
  name: string,
  body: (make: () => Promise<TestDb>, skip: string | false) => void,
): void {
  for (const [label, make] of [
    ["SQLite", async () => sqliteDb()],
    ["PostgreSQL", pgDb],
  ] as const) {
    describe(`${name} on ${label}`, async () => {
      const probe = await make();
      if (typeof probe !== "string") await probe.drop();
      body(async () => (await make()) as TestDb, typeof probe === "string" ? probe : false);
    });
  }
}

/**
 * Creates key `name` on `on` and generates a data key under it through `via` (another replica,
 * or the same server): the generate response (`stanza`, `fileKey`, ...). Asserts both succeed.
 */
export async function keyAndDataKey(
  on: FastifyInstance,
  admin: string,
  name: string,
  via: FastifyInstance = on,
): Promise<{ stanza: { type: string; fields: string[] }; fileKey: string }> {
  const post = (app: FastifyInstance, url: string, payload: object) =>
    app.inject({ method: "POST", url, headers: bearer(admin), payload });
  const k = await post(on, "/v1/keys", { name });
  if (k.statusCode !== 200) throw new Error(`creating key ${name}: ${k.statusCode} ${k.body}`);
  const g = await post(via, "/v1/datakeys/generate", { key: name });
  if (g.statusCode !== 200) throw new Error(`generating under ${name}: ${g.statusCode} ${g.body}`);
  return g.json();
}

/**
 * The dev TLS of `home` (ensureDevTls), its CA certificate as PEM (the clients' trust and the
 * server's `clientCa`), and the CA itself, to issue client certificates with (mTLS tests).
 */
export async function devMtls(home: string): Promise<{ dev: DevTls; caPem: string; ca: DevCa }> {
  const dev = await ensureDevTls(home);
  return { dev, caPem: readFileSync(dev.caPath, "utf8"), ca: await loadDevCa(home) };
}

/** A key service for CLI tests: its app and database, and the client environment for it. */
export interface CliService {
  readonly app: FastifyInstance;
  readonly db: Database;
  /** The database's URL (for commands that read it directly, `--db`). */
  readonly dbUrl: string;
  /** TENSORSEAL_SERVER and TENSORSEAL_SERVER_CA (the dev CA). */
  readonly env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/**
 * A key service over HTTPS with the dev CA in `sb` (one CA for every call in the sandbox), on a
 * fresh SQLite database, listening on loopback; `opts` are added to the test defaults.
 */
export async function cliService(
  sb: Sandbox,
  opts: Partial<ServerOptions> = {},
): Promise<CliService> {
  const dev = await ensureDevTls(join(sb.dir, "srv"));
  const tdb = sqliteDb();
  const db = await tdb.open();
  const app = await server(db, { sweepEveryMs: 0, tls: dev, ...opts });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  return {
    app,
    db,
    dbUrl: tdb.url,
    env: { TENSORSEAL_SERVER: url, TENSORSEAL_SERVER_CA: dev.caPath },
    async close() {
      await app.close();
      await db.close();
      await tdb.drop();
    },
  };
}

export const ROOT = randomBytes(32);

export async function server(
  db: Database,
  opts: Partial<ServerOptions> = {},
): Promise<FastifyInstance> {
  // No time-based checkpoints unless a test asks: counts of checkpoints stay deterministic.
  // Suites that assert an audit entry for each of many 401s from loopback get a budget that
  // covers them (refusals.test.ts tests the limit itself).
  return buildServer({
    db,
    rootKey: ROOT,
    logger: false,
    checkpointEvery: 4,
    checkpointIntervalS: 0,
    refusalLimit: { burst: 10_000 },
    ...opts,
  });
}

export async function token(db: Database, scopes: string): Promise<string> {
  return (await new TokenRepo(db).create(scopes.split(",") as never)).token;
}

export function bearer(t: string): Record<string, string> {
  return { authorization: `Bearer ${t}` };
}

/** The fields of an audit entry the tests read. */
export interface AuditEntryView {
  readonly action: string;
  readonly outcome: string;
  readonly status: number;
  readonly authz: { readonly decision: string; readonly policies?: string[] };
  readonly [field: string]: unknown;
}

/** `app.inject` with `token` as bearer, and `payload` as the JSON body when one is given. */
export function inject(
  app: FastifyInstance,
  method: "GET" | "POST" | "PATCH",
  url: string,
  token: string,
  payload?: unknown,
): Promise<LightMyRequestResponse> {
  return app.inject({
    method,
    url,
    headers: bearer(token),
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
}

/** Every audit entry, parsed, in seq order (straight from the table). */
export async function auditEntries<T = Record<string, unknown>>(db: Database): Promise<T[]> {
  const rows = await db.db.selectFrom("audit").select("entry").orderBy("seq").execute();
  return rows.map((r) => JSON.parse(r.entry) as T);
}

/** The newest audit entry, parsed (what the last request recorded). */
export async function lastAuditEntry<T = Record<string, unknown>>(db: Database): Promise<T> {
  const r = await db.db
    .selectFrom("audit")
    .select("entry")
    .orderBy("seq", "desc")
    .limit(1)
    .executeTakeFirstOrThrow();
  return JSON.parse(r.entry);
}
