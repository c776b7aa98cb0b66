/**
 * The command tree: every command registers itself from commands/*.ts. Kept apart from main.ts
 * (which runs it and turns errors into exit codes) so tests can walk the tree without running
 * anything.
 */
import type { Command } from "commander";
import { firstOperand, versionOnly } from "./argv.js";
import { newProgram, type Register } from "./program-root.js";

/**
 * Every top-level command, in help order, with the module that registers it. Loaded on demand:
 * a run of one command imports only its own registration (which loads its implementation only
 * when it runs); help, --version and unknown names get the whole tree. Several modules add
 * subcommands to `service`.
 */
const COMMANDS: readonly (readonly [name: string, load: () => Promise<Register>])[] = [
  ["init", async () => (await import("./commands/init.js")).registerInit],
  ["keygen", async () => (await import("./commands/keygen.js")).registerKeygen],
  ["keys", async () => (await import("./commands/keys.js")).registerKeys],
  ["seal", async () => (await import("./commands/seal.js")).registerSeal],
  ["open", async () => (await import("./commands/open.js")).registerOpen],
  ["inspect", async () => (await import("./commands/inspect.js")).registerInspect],
  ["verify", async () => (await import("./commands/verify.js")).registerVerify],
  ["rewrap", async () => (await import("./commands/rewrap.js")).registerRewrap],
  ["reseal", async () => (await import("./commands/reseal.js")).registerReseal],
  ["root", async () => (await import("./commands/root.js")).registerRoot],
  ["seal-dir", async () => (await import("./commands/seal-dir.js")).registerSealDir],
  ["open-dir", async () => (await import("./commands/open-dir.js")).registerOpenDir],
  ["exec", async () => (await import("./commands/exec.js")).registerExec],
  ["hsm", async () => (await import("./commands/hsm.js")).registerHsm],
  ["serve", async () => (await import("./commands/serve.js")).registerServe],
  ["service", async () => (await import("./commands/service-token.js")).registerServiceToken],
  ["service", async () => (await import("./commands/service-keys.js")).registerServiceKeys],
  [
    "service",
    async () => (await import("./commands/service-artifacts.js")).registerServiceArtifacts,
  ],
  ["service", async () => (await import("./commands/service-cert.js")).registerServiceCert],
  [
    "service",
    async () => (await import("./commands/service-principals.js")).registerServicePrincipals,
  ],
  [
    "service",
    async () => (await import("./commands/service-approvals.js")).registerServiceApprovals,
  ],
  ["service", async () => (await import("./commands/service-root.js")).registerServiceRoot],
  ["audit", async () => (await import("./commands/audit.js")).registerAudit],
  ["policy", async () => (await import("./commands/policy.js")).registerPolicy],
  ["doctor", async () => (await import("./commands/doctor.js")).registerDoctor],
  ["inventory", async () => (await import("./commands/inventory.js")).registerInventory],
  ["report", async () => (await import("./commands/report.js")).registerReport],
  ["drill", async () => (await import("./commands/drill.js")).registerDrill],
  ["incident", async () => (await import("./commands/incident.js")).registerIncident],
];

/** The command `argv` names (its first operand), or null for none or one we do not know. */
export function commandNamed(argv: readonly string[]): string | null {
  const name = firstOperand(argv);
  return COMMANDS.some(([n]) => n === name) ? name : null;
}

/**
 * The command tree. With `argv`, only the command it names is registered (the rest of the tree
 * is not even loaded: start-up is measured, bench/startup.ts), none for a lone --version;
 * without, or when argv names no known command (help, a typo to suggest a fix for), every one.
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  const name = argv ? commandNamed(argv) : null;
  const wanted =
    argv && versionOnly(argv) ? [] : COMMANDS.filter(([n]) => name === null || n === name);
  const registers = await Promise.all(wanted.map(([, load]) => load()));
  return newProgram(registers);
}
