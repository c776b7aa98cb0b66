/** Cryptographic health checks (`tensorseal doctor`). */
export { doctorCommand } from "./command.js";
/** The breach drill history (`tensorseal drill run` writes it; doctor and auditor reports read it). */
export {
  type DrillRecord,
  HISTORY_FORMAT as DRILL_HISTORY_FORMAT,
  type History as DrillHistory,
  historyPath as drillHistoryPath,
  readHistory as readDrillHistory,
} from "./drill-history.js";
export { type Finding, RULES, type RuleId, SEVERITIES, type Severity } from "./findings.js";
export { type DoctorOptions, type DoctorReport, runDoctor } from "./run.js";
export { toSarif } from "./sarif.js";
