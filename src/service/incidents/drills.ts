/**
 * Drill results recorded on the key service (`tensorseal drill run --server`): each is a drill
 * history line (doctor/drill-history.ts DrillRecord, the same shape the local history keeps)
 * plus who recorded it and when, so the console shows the drill history next to incidents.
 */
import { randomBytes } from "node:crypto";
import type { DrillRecord } from "../../doctor/drill-history.js";
import { pageOf } from "../db/page.js";
import type { Database, DrillsTable } from "../db/schema.js";

export interface ServiceDrill extends Omit<DrillRecord, "format"> {
  readonly id: string;
  readonly recorded: string;
  readonly recordedBy: string;
}

export class DrillRepo {
  constructor(
    private readonly d: Database,
    private readonly now: () => number,
  ) {}

  /** Records the runs in one statement (all or none); their ids in order. */
  async record(records: readonly Omit<DrillRecord, "format">[], by: string): Promise<string[]> {
    const recorded = new Date(this.now()).toISOString();
    const rows: DrillsTable[] = records.map((r) => ({
      id: `drill-${randomBytes(8).toString("hex")}`,
      scenario: r.scenario,
      result: r.result,
      detect_ms: r.detectMs,
      contain_ms: r.containMs,
      duration_ms: r.durationMs,
      time: r.time,
      version: r.version,
      database: r.database,
      checks_passed: r.checks.passed,
      checks_total: r.checks.total,
      failed: JSON.stringify(r.failed),
      error: r.error ?? null,
      recorded,
      recorded_by: by,
    }));
    await this.d.db.insertInto("drills").values(rows).execute();
    return rows.map((r) => r.id);
  }

  /** Newest run first; `before` (an id) pages on; `next` when more follow. */
  async list(q: {
    scenario?: string;
    limit: number;
    before?: string;
  }): Promise<{ drills: ServiceDrill[]; next?: string }> {
    let s = this.d.db.selectFrom("drills").selectAll();
    if (q.scenario !== undefined) s = s.where("scenario", "=", q.scenario);
    if (q.before !== undefined) {
      const b = await this.d.db
        .selectFrom("drills")
        .select(["time", "id"])
        .where("id", "=", q.before)
        .executeTakeFirst();
      if (b)
        s = s.where((eb) =>
          eb.or([eb("time", "<", b.time), eb.and([eb("time", "=", b.time), eb("id", "<", b.id)])]),
        );
    }
    const rows = await s
      .orderBy("time", "desc")
      .orderBy("id", "desc")
      .limit(q.limit + 1)
      .execute();
    return pageOf("drills", rows, q.limit, fromRow, (d) => d.id);
  }
}

function fromRow(r: DrillsTable): ServiceDrill {
  const ms = (v: number | string | null) => (v === null ? null : Number(v));
  return {
    id: r.id,
    scenario: r.scenario,
    result: r.result === "pass" ? "pass" : "fail",
    detectMs: ms(r.detect_ms),
    containMs: ms(r.contain_ms),
    durationMs: Number(r.duration_ms),
    time: r.time,
    version: r.version,
    database: r.database,
    checks: { passed: Number(r.checks_passed), total: Number(r.checks_total) },
    failed: JSON.parse(r.failed) as string[],
    ...(r.error !== null ? { error: r.error } : {}),
    recorded: r.recorded,
    recordedBy: r.recorded_by,
  };
}
