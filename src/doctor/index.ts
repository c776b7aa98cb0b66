/** Cryptographic health checks (`tensorseal doctor`). */
export { doctorCommand } from "./command.js";
export { type Finding, RULES, type RuleId, SEVERITIES, type Severity } from "./findings.js";
export { type DoctorOptions, type DoctorReport, runDoctor } from "./run.js";
export { toSarif } from "./sarif.js";
