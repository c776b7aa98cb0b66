/**
 * Soak (issue #4 §9): a real `tensorseal serve --dev` child under steady unwrap load (autocannon,
 * 16 connections, TLS loopback, every unwrap audited before its key is sent) for `--minutes`.
 * Every 10 s it reads the server's RSS and V8 heap and its request counts from /metrics. At the
 * end: unwraps/s, p50/p99, errors, and the memory slope (least squares, MiB per minute) over the
 * second half of the run, when caches and JIT have warmed up (with a restart: from the end of
 * its outage, if that is later). Pass: zero errors and an RSS slope
 * below --max-slope (default 1 MiB/min); exit 1 otherwise. `audit verify` then checks the chain.
 *
 *   npm run bench:soak -- [--minutes 10] [--db sqlite|postgres] [--pg-restart-at SECONDS]
 *
 * `--db postgres` runs a private PostgreSQL instance (scripts/pg-instance.ts, fsync on), never
 * the shared server. `--pg-restart-at S` restarts it (`-m fast`) S seconds in: the 503s of that
 * outage (until the first sample window without any) are reported apart and do not count as
 * errors; any other non-2xx, timeout or connection error does.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type PgInstance, startPgInstance } from "../scripts/pg-instance.js";
import {
  autocannon,
  CLI,
  call,
  type ServiceChild,
  startService,
  stopService,
} from "./serve-child.js";

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    db: { type: "string", default: "sqlite" },
    "pg-restart-at": { type: "string" },
    connections: { type: "string", default: "16" },
    "sample-seconds": { type: "string", default: "10" },
    "max-slope": { type: "string", default: "1" },
  },
});
const MINUTES = Number(args.minutes);
const SAMPLE_S = Number(args["sample-seconds"]);
const MAX_SLOPE = Number(args["max-slope"]);
const RESTART_AT = args["pg-restart-at"] === undefined ? null : Number(args["pg-restart-at"]);
if (!(MINUTES > 0) || !(SAMPLE_S > 0) || !["sqlite", "postgres"].includes(args.db!))
  throw new Error("usage: soak [--minutes N] [--db sqlite|postgres] [--pg-restart-at S]");
if (RESTART_AT !== null && args.db !== "postgres")
  throw new Error("--pg-restart-at needs --db postgres");

const MiB = 2 ** 20;
const UNWRAP = "/v1/datakeys/unwrap";

interface Sample {
  t: number; // seconds since the load started
  rss: number;
  heap: number;
  ok: number; // cumulative 2xx unwraps (server's count)
  unavailable: number; // cumulative 503
  other: number; // cumulative other statuses
}

/** The server's own view: memory and unwrap answers by status. */
async function sample(s: ServiceChild, t: number): Promise<Sample> {
  const m = (await call(s, "GET", "/metrics")).text;
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(m)?.[1] ?? NaN);
  const out = {
    t,
    rss: gauge("process_resident_memory_bytes"),
    heap: gauge("nodejs_heap_size_used_bytes"),
    ok: 0,
    unavailable: 0,
    other: 0,
  };
  const re =
    /^tensorseal_http_requests_total\{route="([^"]*)",method="POST",status="(\d+)"\} (\d+)$/gm;
  for (const [, route, status, n] of m.matchAll(re)) {
    if (route !== UNWRAP) continue;
    const k = status!.startsWith("2") ? "ok" : status === "503" ? "unavailable" : "other";
    out[k] += Number(n);
  }
  return out;
}

/** Least-squares slope of y (bytes) over t (s), in MiB per minute. */
function slope(xs: Sample[], y: (s: Sample) => number): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mt = xs.reduce((a, s) => a + s.t, 0) / n;
  const my = xs.reduce((a, s) => a + y(s), 0) / n;
  let num = 0;
  let den = 0;
  for (const s of xs) {
    num += (s.t - mt) * (y(s) - my);
    den += (s.t - mt) ** 2;
  }
  return ((num / den) * 60) / MiB;
}

/**
 * The restart's outage: 503s from the restart until the first sample window without one, and
 * when that window ended (the end of the run if none did).
 */
function outage(samples: Sample[]): { count: number; end: number } {
  if (RESTART_AT === null) return { count: 0, end: 0 };
  let count = 0;
  for (let i = 1; i < samples.length; i++) {
    const [a, b] = [samples[i - 1]!, samples[i]!];
    if (b.t <= RESTART_AT) continue;
    const d = b.unavailable - a.unavailable;
    if (d === 0 && a.t >= RESTART_AT) return { count, end: b.t };
    count += d;
  }
  return { count, end: samples.at(-1)!.t };
}

async function main(): Promise<number> {
  const home = mkdtempSync(join(tmpdir(), "tensorseal-soak-"));
  let pgi: PgInstance | null = null;
  let s: ServiceChild | null = null;
  try {
    if (args.db === "postgres") pgi = await startPgInstance();
    const db = pgi ? pgi.url : `sqlite:${join(home, "service.db")}`;
    s = await startService(db, home);
    await call(s, "POST", "/v1/keys", { name: "soak" });
    const g = JSON.parse((await call(s, "POST", "/v1/datakeys/generate", { key: "soak" })).text);
    const seconds = Math.round(MINUTES * 60);
    console.log(
      `soak: ${args.db}${pgi ? " (private instance, fsync on)" : " (WAL, synchronous=FULL)"}, ${seconds} s, ${args.connections} connections, unwrap over TLS loopback, sample every ${SAMPLE_S} s${RESTART_AT === null ? "" : `, PostgreSQL restart at ${RESTART_AT} s`}`,
    );
    const t0 = Date.now();
    const since = () => (Date.now() - t0) / 1000;
    const samples: Sample[] = [await sample(s, 0)];
    const server = s;
    const timer = setInterval(() => {
      sample(server, since())
        .then((x) => {
          samples.push(x);
          const d = samples.at(-2)!;
          console.log(
            `  ${x.t.toFixed(0).padStart(5)} s  rss ${(x.rss / MiB).toFixed(1)} MiB  heap ${(x.heap / MiB).toFixed(1)} MiB  ${((x.ok - d.ok) / (x.t - d.t)).toFixed(0)} unwraps/s  503: ${x.unavailable - d.unavailable}  other: ${x.other - d.other}`,
          );
        })
        .catch((e) => console.log(`  sample failed: ${(e as Error).message}`));
    }, SAMPLE_S * 1000);
    let restarted: Promise<void> = Promise.resolve();
    const restartTimer =
      pgi && RESTART_AT !== null
        ? setTimeout(() => {
            console.log(`  ${since().toFixed(0).padStart(5)} s  pg_ctl restart -m fast`);
            restarted = pgi!.restart("fast");
          }, RESTART_AT * 1000)
        : null;
    const r = await autocannon({
      url: new URL(UNWRAP, s.url).toString(),
      method: "POST",
      connections: Number(args.connections),
      duration: seconds,
      headers: { authorization: `Bearer ${s.token}`, "content-type": "application/json" },
      body: JSON.stringify({ stanza: g.stanza }),
    });
    clearInterval(timer);
    if (restartTimer) clearTimeout(restartTimer);
    await restarted;
    samples.push(await sample(s, since()));

    const out = outage(samples);
    const excused = out.count;
    // After warm-up, and after the reconnects of a restart (new pool connections are a one-off).
    const from = Math.max(seconds / 2, RESTART_AT === null ? 0 : out.end);
    const late = samples.filter((x) => x.t >= from);
    const rssSlope = slope(late, (x) => x.rss);
    const heapSlope = slope(late, (x) => x.heap);
    const errors = r.non2xx + r.errors + r.timeouts - excused;
    const v = spawnSync(process.execPath, [CLI, "audit", "verify", "--db", db, "--json"], {
      env: s.env,
    });
    const verify = JSON.parse(v.stdout.toString() || "{}");
    const flat = rssSlope < MAX_SLOPE;
    const line = (n: string, x: string) => console.log(`  ${n.padEnd(22)} ${x}`);
    line(
      "unwraps",
      `${r.requests.average.toFixed(0)}/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ${r.requests.total} requests`,
    );
    line(
      "errors",
      `${errors} (non-2xx ${r.non2xx}, connection errors ${r.errors}, timeouts ${r.timeouts}${RESTART_AT === null ? "" : `; 503 during the restart, not counted: ${excused}`}) — limit 0: ${errors === 0 ? "ok" : "FAILED"}`,
    );
    line(
      `memory from ${from.toFixed(0)} s`,
      `RSS ${rssSlope.toFixed(2)} MiB/min, heap ${heapSlope.toFixed(2)} MiB/min (GC sawtooth: shown, not judged) over ${late.length} samples (RSS ${(samples[0]!.rss / MiB).toFixed(0)} -> ${(samples.at(-1)!.rss / MiB).toFixed(0)} MiB) — limit < ${MAX_SLOPE} MiB/min: ${flat ? "flat" : "RISING"}`,
    );
    line(
      "audit verify",
      `${verify.ok ? "ok" : "FAILED"}: ${verify.entries} entries, ${verify.checkpoints} checkpoints`,
    );
    return errors === 0 && flat && verify.ok ? 0 : 1;
  } finally {
    if (s) await stopService(s);
    await pgi?.cleanup();
    rmSync(home, { recursive: true, force: true });
  }
}

process.exit(await main());
