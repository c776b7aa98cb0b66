/** The `doctor` command's work: options checked, checks run, report printed, exit code set. */
import { existsSync } from "node:fs";
import { join } from "node:path";

import { keystoreOptions } from "../cli/keys-context.js";
import { printJson } from "../cli/options.js";
import { print } from "../cli/output.js";
import { projectTiers } from "../cli/project-config.js";
import { defaultRotationSeconds } from "../cli/rotation-default.js";
import { fail } from "../format/errors.js";
import { defaultHome } from "../keys/index.js";
import { historyPath } from "./drill-history.js";
import { exitCodeFor, isSeverity, type Severity, worst } from "./findings.js";
import { runDoctor } from "./run.js";
import { toSarif } from "./sarif.js";
import { textReport } from "./text.js";

export interface DoctorFlags {
  format: string;
  json?: boolean;
  failOn: string;
  certDays: string;
  tokenDays: string;
  checkpointDays?: string;
  drillDays?: string;
  drillHistory?: string;
  db?: string;
  server?: string;
  policy?: string;
  shareDays?: string;
}

export async function doctorCommand(paths: string[], o: DoctorFlags): Promise<void> {
  const format = o.json ? "json" : o.format;
  if (!["text", "json", "sarif"].includes(format))
    fail("E_USAGE", `--format must be text, json or sarif, not ${JSON.stringify(format)}`);
  if (o.json && o.format !== "text" && o.format !== "json")
    fail("E_USAGE", "--json and --format sarif are contradictory: give one");
  const failOn = o.failOn;
  if (failOn !== "none" && !isSeverity(failOn))
    fail(
      "E_USAGE",
      `--fail-on must be note, warning, error, critical or none, not ${JSON.stringify(failOn)}`,
    );
  const days = {
    "--cert-days": o.certDays,
    "--token-days": o.tokenDays,
    "--checkpoint-days": o.checkpointDays,
    "--drill-days": o.drillDays,
    "--share-days": o.shareDays,
  };
  for (const [flag, v] of Object.entries(days))
    if (v !== undefined && !/^\d{1,5}$/.test(v))
      fail("E_USAGE", `${flag} must be a whole number of days, not ${JSON.stringify(v)}`);
  const ksOpts = keystoreOptions();
  const now = ksOpts.now?.() ?? new Date();
  const defaultRotation = defaultRotationSeconds();
  const server = o.server ?? process.env.TENSORSEAL_SERVER;
  const home = defaultHome();
  const report = await runDoctor({
    paths,
    home,
    now,
    defaultRotation,
    server: server || undefined,
    certDays: Number(o.certDays),
    db: serviceDb(o.db, home),
    tokenDays: Number(o.tokenDays),
    ...(o.checkpointDays !== undefined ? { checkpointDays: Number(o.checkpointDays) } : {}),
    keystoreOptions: ksOpts,
    drillHistory: historyPath(o.drillHistory),
    ...(o.drillDays !== undefined ? { drillDays: Number(o.drillDays) } : {}),
    drillRequired: o.drillDays !== undefined,
    tiers: projectTiers(),
    policy: o.policy,
    ...(o.shareDays !== undefined ? { shareDays: Number(o.shareDays) } : {}),
  });
  const exitCode = exitCodeFor(report.findings, failOn as Severity | "none");
  if (format === "sarif") printJson(toSarif(report.findings));
  else if (format === "json")
    printJson({
      findings: report.findings,
      filesChecked: report.filesChecked,
      keystoreVerified: report.keystoreVerified,
      worst: worst(report.findings),
      exitCode,
    });
  else for (const line of textReport(report)) print(line);
  process.exitCode = exitCode;
}

/**
 * The service database to check tokens in: --db, else TENSORSEAL_SERVICE_DB, else the default
 * sqlite:$TENSORSEAL_HOME/service.db only when that file exists (doctor run on the service's
 * host); never a new empty database.
 */
function serviceDb(flag: string | undefined, home: string): string | undefined {
  const given = flag ?? process.env.TENSORSEAL_SERVICE_DB;
  if (given) return given;
  const file = join(home, "service.db");
  return existsSync(file) ? `sqlite:${file}` : undefined;
}
