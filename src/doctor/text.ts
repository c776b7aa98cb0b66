/** The human report: one block per finding (severity, id, file, message, evidence, fix). */

import { SEVERITIES } from "./findings.js";
import type { DoctorReport } from "./run.js";

export function textReport(r: DoctorReport): string[] {
  const out: string[] = [];
  for (const f of r.findings) {
    out.push(`${f.severity.toUpperCase()} ${f.id}${f.file ? ` ${f.file}` : ""}`);
    out.push(`  ${f.message}`);
    out.push(`  evidence: ${f.evidence}`);
    out.push(`  fix: ${f.fix}`);
  }
  const checked = `${r.filesChecked} sealed file(s) checked`;
  if (r.findings.length === 0) {
    out.push(`no findings (${checked})`);
    return out;
  }
  const counts = [...SEVERITIES]
    .reverse()
    .map((s) => [s, r.findings.filter((f) => f.severity === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`);
  out.push(`${r.findings.length} finding(s): ${counts.join(", ")} (${checked})`);
  return out;
}
