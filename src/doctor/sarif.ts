/**
 * SARIF 2.1.0 (OASIS) for CI code scanning: every rule in tool.driver.rules (catalog order, so
 * ruleIndex is stable), one result per finding with its ruleId, level and message, and a file
 * URI location where the finding is about a file. SARIF has no "critical" level: it is `error`
 * with a `security-severity` of 9.0 (the property GitHub code scanning ranks alerts by).
 */
import { pathToFileURL } from "node:url";
import { type Finding, RULES, type RuleId, type Severity } from "./findings.js";

export const SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json";

const LEVEL: Record<Severity, "note" | "warning" | "error"> = {
  note: "note",
  warning: "warning",
  error: "error",
  critical: "error",
};

const SECURITY_SEVERITY: Record<Severity, string> = {
  note: "2.0",
  warning: "5.0",
  error: "7.5",
  critical: "9.0",
};

export function toSarif(findings: readonly Finding[]): unknown {
  const ids = Object.keys(RULES) as RuleId[];
  return {
    $schema: SARIF_SCHEMA,
    version: "2.1.0",
    runs: [
      {
        tool: {
          driver: {
            name: "tensorseal-doctor",
            fullName: "tensorseal doctor",
            version: "0.1.0",
            rules: ids.map((id) => {
              const r = RULES[id];
              return {
                id,
                name: id.replace(/[.-](\w)/g, (_, c: string) => c.toUpperCase()),
                shortDescription: { text: r.title },
                fullDescription: { text: r.help },
                help: { text: r.help },
                defaultConfiguration: { level: LEVEL[r.severity] },
                properties: {
                  tags: ["security"],
                  "security-severity": SECURITY_SEVERITY[r.severity],
                },
              };
            }),
          },
        },
        results: findings.map((f) => ({
          ruleId: f.id,
          ruleIndex: ids.indexOf(f.id),
          level: LEVEL[f.severity],
          message: { text: `${f.message}. Fix: ${f.fix}` },
          ...(f.file && {
            locations: [
              { physicalLocation: { artifactLocation: { uri: pathToFileURL(f.file).href } } },
            ],
          }),
          properties: {
            severity: f.severity,
            "security-severity": SECURITY_SEVERITY[f.severity],
            evidence: f.evidence,
            fix: f.fix,
          },
        })),
      },
    ],
  };
}
