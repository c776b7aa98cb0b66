/** Every drill scenario, in the order `drill run --all` plays them. */
import type { Scenario } from "../types.js";
import { auditRollback } from "./audit-rollback.js";
import { insiderBurst } from "./insider-burst.js";
import { leakedFileKey } from "./leaked-file-key.js";
import { lostRoot } from "./lost-root.js";
import { stolenVersion } from "./stolen-version.js";
import { tamperedArtifact } from "./tampered-artifact.js";
import { unknownEndpoint } from "./unknown-endpoint.js";

export const SCENARIOS: readonly Scenario[] = [
  stolenVersion,
  insiderBurst,
  unknownEndpoint,
  tamperedArtifact,
  auditRollback,
  lostRoot,
  leakedFileKey,
];

export function scenarioNamed(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
