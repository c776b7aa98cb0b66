/** `--scope` values and what they mean for class and severity (docs/INCIDENTS.md). */
import { fail } from "../format/errors.js";
import { printable } from "../format/printable.js";
import type { Scope, Severity } from "./types.js";

const KINDS = ["key", "principal", "endpoint", "artifact"] as const;

/** key:NAME[@VERSION] | principal:ID | endpoint:ADDR | artifact:ID */
export function parseScope(text: string): Scope {
  const i = text.indexOf(":");
  const kind = text.slice(0, i) as Scope["kind"];
  const value = text.slice(i + 1);
  if (i < 1 || !KINDS.includes(kind) || value.length === 0 || value.length > 2048)
    fail(
      "E_USAGE",
      `--scope must be key:NAME[@VERSION], principal:ID, endpoint:ADDR or artifact:ID, got ${JSON.stringify(printable(text.slice(0, 80)))}`,
    );
  if (kind !== "key") return { kind, value };
  const m = /^([A-Za-z0-9._-]{1,128})(?:@([0-9]{1,9}))?$/.exec(value);
  if (!m || (m[2] !== undefined && Number(m[2]) < 1))
    fail("E_USAGE", `--scope key:NAME[@VERSION]: not a key name and version: ${printable(value)}`);
  return m[2] === undefined
    ? { kind, value: m[1]! }
    : { kind, value: m[1]!, version: Number(m[2]) };
}

export function scopeText(s: Scope): string {
  return `${s.kind}:${s.value}${s.version !== undefined ? `@${s.version}` : ""}`;
}

/** Incident class and severity by scope (the table in docs/INCIDENTS.md). */
export function classify(s: Scope): { class: string; severity: Severity } {
  switch (s.kind) {
    case "key":
      return s.version === undefined
        ? { class: "key-compromise", severity: "critical" }
        : { class: "key-version-compromise", severity: "high" };
    case "principal":
      return { class: "credential-compromise", severity: "high" };
    case "endpoint":
      return { class: "endpoint-compromise", severity: "high" };
    case "artifact":
      return { class: "file-key-leak", severity: "medium" };
  }
}
