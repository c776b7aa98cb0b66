/**
 * Key service load benchmark (issue #4): a real `tensorseal serve --dev` child process over TLS
 * on loopback, driven by autocannon from this process. Every unwrap is committed to the audit
 * chain (SQLite: WAL + synchronous=FULL; PostgreSQL: committed transaction) before the key is
 * sent. Cases per database: /healthz (the HTTPS ceiling, measured in the same run), single
 * unwrap, batched unwrap (100 stanzas per request). Goals: >= 3,000 unwraps/s with p99 <= 20 ms;
 * batched >= 30,000 keys/s. Then `audit verify` checks the chain the load wrote.
 *
 *   npm run bench:service            BENCH_SECONDS=10 (default), TENSORSEAL_TEST_PG_URL for PostgreSQL
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import {
  autocannon,
  CLI,
  call,
  type ServiceChild,
  startService,
  stopService,
} from "./serve-child.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const PG_URL = process.env.TENSORSEAL_TEST_PG_URL ?? "postgres://root@127.0.0.1:5432/test";
const BATCH = 100;
/** Extra node flags for the server process only, e.g. BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter(Boolean);
/** Run only these databases (comma-separated: sqlite,postgres); default both. */
const ONLY = new Set((process.env.BENCH_DB ?? "sqlite,postgres").split(","));

type Server = ServiceChild;

function start(db: string, home: string): Promise<Server> {
  return startService(db, home, ["--batch-max", String(BATCH)], SERVER_NODE_ARGS);
}

async function post(s: Server, path: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await call(s, "POST", path, body);
  if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status} ${r.text}`);
  return JSON.parse(r.text);
}

async function load(s: Server, path: string, body: unknown, connections: number, method = "POST") {
  const r = await autocannon({
    url: new URL(path, s.url).toString(),
    method,
    connections,
    duration: SECONDS,
    headers: { authorization: `Bearer ${s.token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const bad = r.non2xx + r.errors + r.timeouts;
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    total: r.requests.total,
    bad,
  };
}

async function bench(label: string, db: string): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), "tensorseal-bench-"));
  const s = await start(db, home);
  try {
    await post(s, "/v1/keys", { name: "bench" });
    const g = await post(s, "/v1/datakeys/generate", { key: "bench" });
    const stanzas = await Promise.all(
      Array.from(
        { length: BATCH },
        async () => (await post(s, "/v1/datakeys/generate", { key: "bench" })).stanza,
      ),
    );
    const health = await load(s, "/healthz", undefined, 16, "GET");
    const one = await load(s, "/v1/datakeys/unwrap", { stanza: g.stanza }, 16);
    const batch = await load(s, "/v1/datakeys/unwrap-batch", { stanzas }, 8);
    const v = spawnSync(process.execPath, [CLI, "audit", "verify", "--db", db, "--json"], {
      env: s.env,
    });
    const verify = JSON.parse(v.stdout.toString() || "{}");
    const line = (n: string, x: string) => console.log(`  ${n.padEnd(30)} ${x}`);
    console.log(`${label} (${SECONDS} s per case, TLS loopback, durable audit)`);
    line(
      "healthz (HTTPS ceiling)",
      `${health.rps.toFixed(0)} req/s, p50 ${health.p50} ms, p99 ${health.p99} ms`,
    );
    line(
      "unwrap x16 connections",
      `${one.rps.toFixed(0)} unwraps/s (${((100 * one.rps) / health.rps).toFixed(0)}% of ceiling), p50 ${one.p50} ms, p99 ${one.p99} ms, errors ${one.bad} — goal >= 3000/s, p99 <= 20 ms: ${one.rps >= 3000 && one.p99 <= 20 ? "met" : "NOT met"}`,
    );
    line(
      `unwrap-batch (${BATCH}) x8`,
      `${(batch.rps * BATCH).toFixed(0)} keys/s (${batch.rps.toFixed(0)} req/s), p50 ${batch.p50} ms, p99 ${batch.p99} ms, errors ${batch.bad} — goal >= 30000 keys/s: ${batch.rps * BATCH >= 30000 ? "met" : "NOT met"}`,
    );
    line(
      "audit verify",
      `${verify.ok ? "ok" : "FAILED"}: ${verify.entries} entries, ${verify.checkpoints} checkpoints`,
    );
  } finally {
    await stopService(s);
    rmSync(home, { recursive: true, force: true });
  }
}

const schema = `bench_${process.pid}`;
if (ONLY.has("sqlite"))
  await bench(
    "SQLite",
    `sqlite:${join(mkdtempSync(join(tmpdir(), "tensorseal-bench-db-")), "service.db")}`,
  );
const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
if (!ONLY.has("postgres")) process.exit(0);
try {
  await c.connect();
  await c.query(`create schema ${schema}`);
} catch (e) {
  console.log(`PostgreSQL skipped: ${PG_URL} unreachable (${(e as Error).message})`);
  process.exit(0);
}
try {
  await bench("PostgreSQL", `${PG_URL}${PG_URL.includes("?") ? "&" : "?"}schema=${schema}`);
} finally {
  await c.query(`drop schema ${schema} cascade`);
  await c.end();
}
