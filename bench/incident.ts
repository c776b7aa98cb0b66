/**
 * Incident time-to-contain with 1,000 registered artifacts (issue 13: "npm run bench records
 * ... incident time-to-contain for 1,000 registered artifacts"). A key service in a drill
 * sandbox (in-process, loopback; SQLite, or PostgreSQL with a postgres:// URL) holds N sealed
 * files registered as artifacts (`seal --register`'s record: digest, key version, stanza
 * digest, location); a leaked partner token has unwrapped LEAKED of them. Two incidents are run
 * with the playbook's own functions (src/incident, what the CLI calls), each step timed:
 *   principal  open, contain (the `contain` operation: block + token revoked), assess (the
 *              audit's releases -> artifacts -> files under the directory: LEAKED exposed);
 *   key        open key:NAME@1, contain (rotate + disable v1), assess (all N files at risk).
 * Peer in the same run: one authenticated service round trip (GET /v1/keys/NAME, median of 50),
 * so the step times can be read as "how many requests' worth". Goals from docs/INCIDENTS.md:
 * critical (key) contained within minutes, high (principal) within the hour.
 * Run: npm run bench:incident [-- N [LEAKED [postgres://...]]]
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { Sandbox } from "../src/drill/index.js";
import { registerSealed } from "../src/drill/register.js";
import { inspectFile, sealFile } from "../src/engine/index.js";
import {
  assess,
  contain,
  type IncidentContext,
  openIncident,
  serviceControl,
} from "../src/incident/index.js";
import { serviceIdentity, serviceRecipient } from "../src/keys/service/client.js";

const N = Number(process.argv[2] ?? 1000);
const LEAKED = Number(process.argv[3] ?? 50);
const POSTGRES = process.argv[4];
const CONCURRENCY = 8;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await f();
  return [r, Math.round((performance.now() - t) * 10) / 10];
}

async function pool(n: number, f: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) await f(next++);
    }),
  );
}

async function main(): Promise<void> {
  if (!Number.isInteger(N) || N < 1 || !Number.isInteger(LEAKED) || LEAKED < 1 || LEAKED > N)
    throw new Error("usage: N >= 1, 1 <= LEAKED <= N");
  const load0 = loadavg()[0]!.toFixed(2);
  const sb = await Sandbox.create(POSTGRES ? { postgres: POSTGRES } : {});
  try {
    const svc = await sb.startService();
    const admin = svc.admin;
    const created = await admin.post("/v1/keys", { name: "ml" });
    if (created.status !== 200) admin.refused("/v1/keys", created);
    const dir = join(sb.dir, "models");
    await mkdir(dir);
    const files: string[] = [];
    const [, setupMs] = await timed(() =>
      pool(N, async (i) => {
        const data = randomBytes(4096);
        const plain = join(sb.dir, `p${i}.bin`);
        await writeFile(plain, data);
        const out = join(dir, `m${String(i).padStart(5, "0")}.tseal`);
        await sealFile(plain, out, { recipients: [serviceRecipient(admin, "ml")], workers: 0 });
        await registerSealed(admin, out, data);
        files[i] = out;
      }),
    );
    // The leak: a partner's token unwraps LEAKED of the files.
    const partner = await svc.principal(["unwrap"]);
    const pid = serviceIdentity(partner.client, { cache: null });
    for (const f of files.slice(0, LEAKED))
      for (const s of (await inspectFile(f)).stanzas) await pid.unwrap(s);

    const rtt: number[] = [];
    for (let i = 0; i < 50; i++) rtt.push((await timed(() => admin.get("/v1/keys/ml")))[1]);
    const peer = median(rtt);

    const run = async (scope: string) => {
      const serverId = await admin.id();
      const now = () => new Date();
      const [inc, openMs] = await timed(() =>
        openIncident({
          home: sb.home,
          scope,
          reason: "bench",
          control: serviceControl(admin, serverId),
          client: admin,
          now,
        }),
      );
      const ctx: IncidentContext = {
        home: sb.home,
        inc,
        control: serviceControl(admin, serverId),
        client: admin,
        now,
      };
      const [c, containMs] = await timed(() => contain(ctx));
      if (c.waiting || inc.state !== "contained") throw new Error(`${scope}: not contained`);
      const [a, assessMs] = await timed(() => assess(ctx, { paths: [dir] }));
      return {
        scope: scope.replace(/:token:.*/, ":token:…"),
        openMs,
        containMs,
        timeToContainMs: Math.round((openMs + containMs) * 10) / 10,
        assessMs,
        exposed: a.files.filter((f) => f.class === "exposed").length,
        atRisk: a.files.filter((f) => f.class === "at-risk").length,
        releases: a.releases.length,
      };
    };
    const rows = [await run(`principal:${partner.id}`), await run("key:ml@1")];
    const load1 = loadavg()[0]!.toFixed(2);
    console.log(
      `incident bench on ${POSTGRES ? "PostgreSQL" : "SQLite"}: ${N} registered artifacts (set-up ${(setupMs / 1000).toFixed(1)} s), ${LEAKED} released to the partner; load average ${load0} -> ${load1}`,
    );
    console.log(`peer: one service round trip (GET /v1/keys/ml) median ${peer} ms`);
    console.log(
      "scope\topen ms\tcontain ms\ttime-to-contain ms\tassess ms\texposed\tat risk\treleases",
    );
    for (const r of rows)
      console.log(
        `${r.scope}\t${r.openMs}\t${r.containMs}\t${r.timeToContainMs} (${(r.timeToContainMs / peer).toFixed(0)}x peer)\t${r.assessMs}\t${r.exposed}\t${r.atRisk}\t${r.releases}`,
      );
    console.log(
      JSON.stringify({
        bench: "incident",
        database: POSTGRES ? "postgres" : "sqlite",
        artifacts: N,
        leaked: LEAKED,
        setupMs: Math.round(setupMs),
        peerRoundTripMs: peer,
        load: [load0, load1],
        rows,
      }),
    );
  } finally {
    await sb.close();
  }
}

await main();
