/**
 * Runs scenarios, one sandbox each: creates it, plays the scenario, turns its checks and marks
 * into a report, and always tears the sandbox down. A scenario that throws fails with the
 * error's message (which names no secret: the layers' errors never carry keys or tokens).
 */
import { performance } from "node:perf_hooks";
import { redactUrl } from "../service/db/open.js";
import { Sandbox } from "./sandbox.js";
import type { DrillCheck, DrillContext, Scenario, ScenarioReport } from "./types.js";

export interface RunOptions {
  /** PostgreSQL URL for the sandbox databases (default: SQLite in the sandbox directory). */
  readonly postgres?: string;
  /** Defences switched off, per scenario name (tests only). */
  readonly weaken?: Readonly<Record<string, readonly string[]>>;
  readonly tmp?: string;
  /** Called after each scenario (the CLI prints as they finish). */
  readonly onReport?: (r: ScenarioReport) => void;
}

export async function runScenarios(
  scenarios: readonly Scenario[],
  o: RunOptions = {},
): Promise<ScenarioReport[]> {
  const out: ScenarioReport[] = [];
  for (const s of scenarios) {
    const r = await runScenario(s, o);
    o.onReport?.(r);
    out.push(r);
  }
  return out;
}

export async function runScenario(s: Scenario, o: RunOptions = {}): Promise<ScenarioReport> {
  const weakened = [...(o.weaken?.[s.name] ?? [])];
  for (const w of weakened)
    if (!(w in s.weakenings)) throw new Error(`scenario ${s.name} has no defence named ${w}`);
  const database = o.postgres ? "postgres" : "sqlite";
  const started = performance.now();
  const checks: DrillCheck[] = [];
  let breachAt: number | null = null;
  let detectAt: number | null = null;
  let containAt: number | null = null;
  let error: string | undefined;
  let sandbox: Sandbox | null = null;
  try {
    sandbox = await Sandbox.create({
      ...(o.postgres ? { postgres: o.postgres } : {}),
      ...(o.tmp ? { tmp: o.tmp } : {}),
    }).catch((e: Error) => {
      throw o.postgres
        ? new Error(`PostgreSQL at ${redactUrl(o.postgres)} unreachable: ${e.message}`)
        : e;
    });
    const ctx: DrillContext = {
      sandbox,
      weakened: new Set(weakened),
      check(name, ok, detail) {
        checks.push(detail === undefined ? { name, ok } : { name, ok, detail });
        return ok;
      },
      breach() {
        breachAt = performance.now();
      },
      detected() {
        detectAt ??= performance.now();
      },
      contained() {
        containAt ??= performance.now();
      },
    };
    await s.run(ctx);
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  } finally {
    await sandbox?.close().catch(() => {});
  }
  const since = (t: number | null) =>
    t === null || breachAt === null ? null : Math.max(0, round(t - breachAt));
  const detectMs = since(detectAt);
  const containMs = since(containAt);
  const ok =
    error === undefined &&
    checks.length > 0 &&
    checks.every((c) => c.ok) &&
    detectMs !== null &&
    containMs !== null;
  return {
    scenario: s.name,
    result: ok ? "pass" : "fail",
    detectMs,
    containMs,
    durationMs: round(performance.now() - started),
    checks,
    ...(error !== undefined ? { error } : {}),
    database,
    ...(weakened.length > 0 ? { weakened } : {}),
  };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
