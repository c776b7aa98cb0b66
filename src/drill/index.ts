/** Breach drills (issue 13 §3): scenarios played against a private sandbox, and their history. */
export {
  appendHistory,
  type DrillRecord,
  HISTORY_FORMAT,
  type History,
  historyPath,
  readHistory,
  toRecord,
} from "./history.js";
export { type RunOptions, runScenario, runScenarios } from "./run.js";
export { Sandbox, type SandboxOptions } from "./sandbox.js";
export { SCENARIOS, scenarioNamed } from "./scenarios/index.js";
export type { DrillCheck, DrillContext, DrillResult, Scenario, ScenarioReport } from "./types.js";
