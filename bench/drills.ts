/**
 * Breach drills (issue 13 §3): time-to-detect and time-to-contain per scenario, the median of
 * ROUNDS runs (each in a fresh sandbox), on SQLite or, with a postgres:// URL as the second
 * argument, PostgreSQL. Prints a table and one JSON line. Run:
 * npm run bench:drills [-- ROUNDS [postgres://...]]
 */
import { runScenario, SCENARIOS } from "../src/drill/index.js";

const ROUNDS = Number(process.argv[2] ?? 3);
const POSTGRES = process.argv[3];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error("ROUNDS must be a positive integer");
  const rows: { scenario: string; detectMs: number; containMs: number; durationMs: number }[] = [];
  for (const s of SCENARIOS) {
    const detect: number[] = [];
    const contain: number[] = [];
    const duration: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const r = await runScenario(s, POSTGRES ? { postgres: POSTGRES } : {});
      if (r.result !== "pass" || r.detectMs === null || r.containMs === null)
        throw new Error(
          `${s.name} failed: ${r.error ?? JSON.stringify(r.checks.filter((c) => !c.ok))}`,
        );
      detect.push(r.detectMs);
      contain.push(r.containMs);
      duration.push(r.durationMs);
    }
    rows.push({
      scenario: s.name,
      detectMs: median(detect),
      containMs: median(contain),
      durationMs: median(duration),
    });
  }
  console.log(
    `drills on ${POSTGRES ? "PostgreSQL" : "SQLite"}, median of ${ROUNDS} run(s), ms from the breach`,
  );
  console.log("scenario\tdetect\tcontain\twhole run");
  for (const r of rows)
    console.log(`${r.scenario}\t${r.detectMs}\t${r.containMs}\t${r.durationMs}`);
  console.log(
    JSON.stringify({
      bench: "drills",
      database: POSTGRES ? "postgres" : "sqlite",
      rounds: ROUNDS,
      rows,
    }),
  );
}

await main();
