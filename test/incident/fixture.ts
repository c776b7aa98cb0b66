/**
 * A key service on loopback (HTTPS, dev CA) for the incident tests: a CLI sandbox with a
 * keystore, named tokens with their scopes, one service key, and sealed, registered models
 * (sealed by the "writer" token). `ok`/`cli` run the real CLI as one of the named tokens.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before } from "node:test";
import type { FastifyInstance } from "fastify";
import type { Scope } from "../../src/service/auth/principal.js";
import { type Database, ensureDevTls, TokenRepo } from "../../src/service/index.js";
import { type Sandbox, sandbox, type TextResult } from "../cli/helpers.js";
import { bearer, pgDb, server, sqliteDb, type TestDb } from "../service/helpers.js";

export interface IncidentServiceOptions {
  readonly db: "SQLite" | "PostgreSQL";
  /** Approvals each operation needs (serve --approvals). */
  readonly approvals?: Record<string, number>;
  /** Token name -> scopes; "writer" seals the models. */
  readonly tokens: Record<string, readonly string[]>;
  readonly key: string;
  readonly models: readonly string[];
  readonly modelBytes: number;
}

export interface SealedModel {
  readonly path: string;
  readonly plain: Buffer;
  /** The registry id `seal --register` recorded. */
  readonly artifact: string;
}

export interface IncidentService {
  readonly db: Database;
  readonly app: FastifyInstance;
  readonly s: Sandbox;
  /** TENSORSEAL_SERVER and its CA. */
  readonly base: NodeJS.ProcessEnv;
  readonly tok: Record<string, { token: string; id: string }>;
  /** The folder holding the models (plaintext NAME.bin, sealed NAME.tseal). */
  readonly dir: string;
  readonly files: Record<string, SealedModel>;
  cli(args: string[], who: string): Promise<TextResult>;
  /** Runs the CLI as `who` and asserts exit 0. */
  ok(args: string[], who?: string): Promise<TextResult>;
  /** The incident's record as the CLI keeps it (JSON, read as the tests need it). */
  // biome-ignore lint/suspicious/noExplicitAny: the tests read whichever record fields they check
  record(id: string): any;
  close(): Promise<void>;
}

/** The running fixture, or why it cannot run (no PostgreSQL outside CI). */
export async function startIncidentService(
  o: IncidentServiceOptions,
): Promise<IncidentService | string> {
  const t: TestDb | string = o.db === "SQLite" ? sqliteDb() : await pgDb();
  if (typeof t === "string") return t;
  const db = await t.open();
  const s = sandbox();
  assert.equal(s.run(["init"]).status, 0);
  const dev = await ensureDevTls(join(s.dir, "srv"));
  const app = await server(db, {
    sweepEveryMs: 0,
    tls: dev,
    ...(o.approvals ? { approvals: { required: o.approvals } } : {}),
  });
  const base = {
    TENSORSEAL_SERVER: await app.listen({ host: "127.0.0.1", port: 0 }),
    TENSORSEAL_SERVER_CA: dev.caPath,
  };
  const tok: Record<string, { token: string; id: string }> = {};
  const repo = new TokenRepo(db);
  for (const [name, scopes] of Object.entries(o.tokens)) {
    const c = await repo.create([...scopes] as Scope[]);
    tok[name] = { token: c.token, id: `token:${c.id}` };
  }
  const cli = (args: string[], who: string) =>
    s.runAsync(args, { ...base, TENSORSEAL_SERVER_TOKEN: tok[who]!.token });
  const ok = async (args: string[], who = "admin") => {
    const r = await cli(args, who);
    assert.equal(r.status, 0, `${args.join(" ")}: ${r.stderr}`);
    return r;
  };
  const k = await app.inject({
    method: "POST",
    url: "/v1/keys",
    headers: bearer(tok.admin!.token),
    payload: { name: o.key },
  });
  assert.equal(k.statusCode, 200, k.body);
  const dir = join(s.dir, "models");
  mkdirSync(dir);
  const files: Record<string, SealedModel> = {};
  for (const n of o.models) {
    const plain = randomBytes(o.modelBytes);
    writeFileSync(join(dir, `${n}.bin`), plain);
    const path = join(dir, `${n}.tseal`);
    const seal = ["seal", join(dir, `${n}.bin`), "-r", `service:${o.key}`, "-o", path];
    const r = await ok([...seal, "--register", "--json"], "writer");
    files[n] = { path, plain, artifact: JSON.parse(r.stdout).artifacts[0] };
  }
  return {
    db,
    app,
    s,
    base,
    tok,
    dir,
    files,
    cli,
    ok,
    record: (id) =>
      JSON.parse(readFileSync(join(s.env.TENSORSEAL_HOME!, "incidents", `${id}.json`), "utf8")),
    async close() {
      s.cleanup();
      await app.close();
      await db.close();
      await t.drop();
    },
  };
}

/** The fixture of a suite: `fx` once `before` ran, or `skip`: why it cannot run. */
export interface IncidentSuite {
  readonly fx: IncidentService;
  readonly skip: string | false;
}

/**
 * startIncidentService as `before`/`after` hooks of the calling `describe`: a test starts with
 * `if (suite.skip) return t.skip(suite.skip)`, then uses `suite.fx`; closed after the suite.
 */
export function incidentSuite(o: IncidentServiceOptions): IncidentSuite {
  let fx: IncidentService | undefined;
  let skip: string | false = false;
  before(async () => {
    const r = await startIncidentService(o);
    if (typeof r === "string") skip = r;
    else fx = r;
  });
  after(async () => {
    if (!skip) await fx?.close();
  });
  return {
    get fx() {
      assert.ok(fx, "the incident service did not start");
      return fx;
    },
    get skip() {
      return skip;
    },
  };
}
