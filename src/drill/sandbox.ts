/**
 * The private world a drill plays in: a temporary directory with its own keystore home, a fresh
 * service database (SQLite in the directory, or a new schema on a PostgreSQL server the caller
 * names), and key services started in-process on 127.0.0.1:0 with the service's own factory
 * (buildServer). Nothing outside the directory (or the schema) is read or written, and
 * `close()` removes both (an interrupt removes the directory; a PostgreSQL schema left by a
 * killed run is named `tensorseal_drill_*` and holds only sandbox data). The clock the services see is held still unless a scenario moves it,
 * so a burst of requests always falls in one anomaly window.
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { onInterrupt } from "../engine/interrupt.js";
import { Keystore, type KeystoreUnlock } from "../keys/keystore.js";
import { ServiceClient } from "../keys/service/client.js";
import type { Scope } from "../service/auth/principal.js";
import { TokenRepo } from "../service/auth/tokens.js";
import type { Database } from "../service/db/schema.js";
import { buildServer, openDatabase, type ServerOptions } from "../service/index.js";

export interface SandboxOptions {
  /** A PostgreSQL URL: the drill's service runs in a fresh schema there (dropped afterwards). */
  readonly postgres?: string;
  /** Parent of the temporary directory (default the OS temp dir). */
  readonly tmp?: string;
}

/** A running key service of the sandbox, with an admin client. */
export interface DrillService {
  readonly app: FastifyInstance;
  readonly db: Database;
  readonly url: string;
  readonly rootKey: Buffer;
  /** Client with a token of scopes admin, wrap, unwrap, rewrap, reader, audit. */
  readonly admin: ServiceClient;
  /**
   * A new static token with these scopes: its client, principal id (`token:ID`) and the bearer
   * token itself (for requests a scenario sends from another source address with inject).
   */
  principal(scopes: Scope[]): Promise<{ client: ServiceClient; id: string; token: string }>;
  /** Stops listening and closes the database connection (the data stays). */
  stop(): Promise<void>;
}

export type ServiceSettings = Omit<ServerOptions, "db" | "rootKey"> & {
  /** Default: a fresh random root key. */
  readonly rootKey?: Buffer;
};

export class Sandbox {
  /** The clock every service of the sandbox reads (Unix ms); scenarios may move it. */
  readonly clock = { t: Date.now() };
  private readonly running = new Set<DrillService>();
  private readonly clients = new Set<ServiceClient>();
  private ks: Keystore | null = null;

  private constructor(
    /** The sandbox's own directory (removed by close). */
    readonly dir: string,
    /** The URL of the service database. */
    readonly dbUrl: string,
    readonly database: "sqlite" | "postgres",
    private readonly dropSchema: (() => Promise<void>) | null,
    /** Unregisters the interrupt cleanup that removes the directory. */
    private readonly released: () => void,
  ) {}

  static async create(o: SandboxOptions = {}): Promise<Sandbox> {
    // The name is chosen, and its removal registered for SIGINT/SIGTERM/SIGHUP or an exit,
    // before the directory exists: no moment where it exists and nothing would remove it.
    const dir = join(o.tmp ?? tmpdir(), `tensorseal-drill-${randomBytes(8).toString("hex")}`);
    const released = onInterrupt(() => rmSync(dir, { recursive: true, force: true }));
    try {
      await mkdir(dir, { mode: 0o700 });
      if (!o.postgres)
        return new Sandbox(dir, `sqlite:${join(dir, "service.db")}`, "sqlite", null, released);
      const { url, drop } = await freshSchema(o.postgres);
      return new Sandbox(dir, url, "postgres", drop, released);
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      released();
      throw e;
    }
  }

  /** The keystore home of the sandbox (TENSORSEAL_HOME for its local keys). */
  get home(): string {
    return join(this.dir, "home");
  }

  /** The unlock of the sandbox keystore (a random passphrase, lowest work factor: drills are fast). */
  readonly unlock: KeystoreUnlock = {
    passphrase: randomBytes(16).toString("hex"),
    workFactor: 10,
  };

  /** The sandbox's local keystore, created on first use. */
  async keystore(): Promise<Keystore> {
    this.ks ??= await Keystore.init(this.home, this.unlock);
    return this.ks;
  }

  /** Starts a key service on 127.0.0.1:0 over the sandbox database (plain HTTP on loopback). */
  async startService(s: ServiceSettings = {}): Promise<DrillService> {
    const rootKey = s.rootKey ?? randomBytes(32);
    const db = await openDatabase(this.dbUrl);
    let app: FastifyInstance;
    try {
      app = await buildServer({
        logger: false,
        sweepEveryMs: 0,
        checkpointIntervalS: 0,
        now: () => this.clock.t,
        ...s,
        db,
        rootKey,
      });
    } catch (e) {
      await db.close();
      throw e;
    }
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    const tokens = new TokenRepo(db);
    const client = (token: string) => {
      const c = new ServiceClient({ url, token });
      this.clients.add(c);
      return c;
    };
    const admin = client(
      (await tokens.create(["admin", "wrap", "unwrap", "rewrap", "reader", "audit"])).token,
    );
    const svc: DrillService = {
      app,
      db,
      url,
      rootKey,
      admin,
      principal: async (scopes) => {
        const t = await tokens.create(scopes, "drill");
        return { client: client(t.token), id: `token:${t.id}`, token: t.token };
      },
      stop: async () => {
        if (!this.running.delete(svc)) return;
        await app.close();
        await db.close();
      },
    };
    this.running.add(svc);
    return svc;
  }

  /** Stops every service, wipes root keys, removes the directory and the schema. */
  async close(): Promise<void> {
    for (const c of this.clients) c.close();
    for (const svc of [...this.running]) {
      await svc.stop().catch(() => {});
      svc.rootKey.fill(0);
    }
    this.ks?.close();
    await rm(this.dir, { recursive: true, force: true });
    this.released();
    await this.dropSchema?.();
  }
}

/** A new schema on the PostgreSQL server at `base`, and how to drop it. */
async function freshSchema(base: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const { default: pg } = await import("pg");
  const schema = `tensorseal_drill_${randomBytes(6).toString("hex")}`;
  const c = new pg.Client({ connectionString: base, connectionTimeoutMillis: 10_000 });
  try {
    await c.connect();
    await c.query(`create schema ${schema}`);
  } finally {
    await c.end().catch(() => {});
  }
  const sep = base.includes("?") ? "&" : "?";
  return {
    url: `${base}${sep}schema=${schema}`,
    drop: async () => {
      const d = new pg.Client({ connectionString: base, connectionTimeoutMillis: 10_000 });
      try {
        await d.connect();
        await d.query(`drop schema if exists ${schema} cascade`);
      } finally {
        await d.end().catch(() => {});
      }
    },
  };
}
