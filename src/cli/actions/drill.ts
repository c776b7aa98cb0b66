/** `drill list | run | history`: the work behind src/cli/commands/drill.ts. */
import type { DrillRecord } from "../../doctor/drill-history.js";
import { fail } from "../../format/errors.js";
import { printJson } from "../options.js";
import { print } from "../output.js";

interface ListFlags {
  json?: boolean;
}

export async function drillList(o: ListFlags): Promise<void> {
  const { SCENARIOS } = await import("../../drill/index.js");
  if (o.json) printJson(SCENARIOS.map((s) => ({ name: s.name, summary: s.summary })));
  else for (const s of SCENARIOS) print(`${s.name}\t${s.summary}`);
}

interface RunFlags {
  all?: boolean;
  db?: string;
  history?: string;
  record: boolean;
  json?: boolean;
}

export async function drillRun(names: string[], o: RunFlags): Promise<void> {
  if (o.all && names.length > 0) fail("E_USAGE", "give scenario names or --all, not both");
  if (!o.all && names.length === 0)
    fail("E_USAGE", "name the scenarios to run (tensorseal drill list), or give --all");
  if (o.db !== undefined && !/^postgres(ql)?:\/\//.test(o.db))
    fail(
      "E_USAGE",
      "--db must be a postgres:// URL (without --db the sandbox uses SQLite in its own directory)",
    );
  const drill = await import("../../drill/index.js");
  const picked = o.all
    ? [...drill.SCENARIOS]
    : names.map(
        (n) =>
          drill.scenarioNamed(n) ??
          fail(
            "E_USAGE",
            `no drill scenario ${JSON.stringify(n)}: one of ${drill.SCENARIOS.map((s) => s.name).join(", ")}`,
          ),
      );
  const history = o.record ? drill.historyPath(o.history) : null;
  const reports = await drill.runScenarios(picked, {
    ...(o.db ? { postgres: o.db } : {}),
    onReport: (r) => {
      if (o.json) return;
      print(
        `${r.result === "pass" ? "PASS" : "FAIL"}\t${r.scenario}\tdetect ${ms(r.detectMs)}\tcontain ${ms(r.containMs)}\t${r.checks.filter((c) => c.ok).length}/${r.checks.length} checks\t${r.database}`,
      );
      for (const c of r.checks)
        if (!c.ok) print(`  not held: ${c.name}${c.detail ? ` (${c.detail})` : ""}`);
      if (r.error) print(`  error: ${r.error}`);
    },
  });
  const now = new Date();
  if (history)
    await drill.appendHistory(
      history,
      reports.map((r) => drill.toRecord(r, now)),
    );
  const recorded = o.record
    ? await recordOnService(reports.map((r) => drill.toRecord(r, now)))
    : null;
  const passed = reports.filter((r) => r.result === "pass").length;
  const failed = reports.length - passed;
  if (o.json)
    printJson({ passed, failed, reports, history, ...(recorded ? { server: recorded } : {}) });
  else
    print(
      `${reports.length} drill${reports.length === 1 ? "" : "s"}: ${passed} passed, ${failed} failed${history ? `; recorded in ${history}` : ""}${recorded ? `; recorded on ${recorded}` : ""}`,
    );
  if (failed > 0) process.exitCode = 1;
}

/**
 * With --server (or TENSORSEAL_SERVER): the results go to the key service too (POST
 * /v1/drills, `drills:record`), for the console's drill history. After the local history is
 * written, so a refusal (an error: the caller asked for it) loses nothing. The service URL, or
 * null when none is configured.
 */
async function recordOnService(records: DrillRecord[]): Promise<string | null> {
  const { configuredService } = await import("../keys-context.js");
  const client = await configuredService();
  if (!client || records.length === 0) return null;
  const r = await client.post("/v1/drills", { records });
  if (r.status !== 200) client.refused("/v1/drills", r);
  return client.url;
}

interface HistoryFlags {
  history?: string;
  scenario?: string;
  json?: boolean;
}

export async function drillHistory(o: HistoryFlags): Promise<void> {
  const drill = await import("../../drill/index.js");
  const path = drill.historyPath(o.history);
  const h = (await drill.readHistory(path)) ?? { records: [], skipped: 0 };
  const records = h.records.filter((r) => o.scenario === undefined || r.scenario === o.scenario);
  const latest: Record<string, (typeof records)[number]> = {};
  for (const r of records) {
    const prev = latest[r.scenario];
    if (!prev || Date.parse(r.time) >= Date.parse(prev.time)) latest[r.scenario] = r;
  }
  if (o.json) {
    printJson({ history: path, records, latest, skipped: h.skipped });
    return;
  }
  if (records.length === 0) {
    print(`no drill recorded in ${path}`);
    return;
  }
  for (const r of records)
    print(
      `${r.time}\t${r.result.toUpperCase()}\t${r.scenario}\tdetect ${ms(r.detectMs)}\tcontain ${ms(r.containMs)}\t${r.database}\t${r.version}`,
    );
  if (h.skipped > 0) print(`(${h.skipped} line(s) of ${path} are not drill records: skipped)`);
}

function ms(v: number | null): string {
  return v === null ? "-" : `${v} ms`;
}
