/**
 * The command tree: every command registers itself from commands/*.ts. Kept apart from main.ts
 * (which runs it and turns errors into exit codes) so tests can walk the tree without running
 * anything.
 */
import { Command } from "commander";
import { printableText } from "../format/printable.js";
import { setServerUrl } from "./session.js";

type Register = (program: Command) => void;

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

/** Global options that take a value: the token after them is not a command name. */
const GLOBAL_WITH_VALUE = new Set(["--server"]);

/** The command `argv` names (its first operand), or null for none or one we do not know. */
export function commandNamed(argv: readonly string[]): string | null {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") return null;
    if (GLOBAL_WITH_VALUE.has(a)) i++;
    else if (!a.startsWith("-")) return COMMANDS.some(([n]) => n === a) ? a : null;
  }
  return null;
}

/** `tensorseal --version` alone: commander prints the version before it looks at any command. */
function versionOnly(argv: readonly string[]): boolean {
  return argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V");
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
  const program = new Command("tensorseal")
    .description(
      "Seal model weights and ML artifacts: encrypted at rest and in transit, opened only with a key.",
    )
    .version("0.1.0")
    .exitOverride()
    // Commander quotes the arguments it refuses: escaped like every other message.
    .configureOutput({ outputError: (text, write) => write(printableText(text)) })
    .showHelpAfterError("(run with --help for usage)")
    .option(
      "--server <url>",
      "key service for service:NAME recipients and service stanzas (TENSORSEAL_SERVER)",
    )
    .hook("preAction", (cmd) => setServerUrl(cmd.opts().server));
  for (const register of registers) register(program);
  overrideExits(program);
  return program;
}

/** Commander exits the process by default; we want its errors back as exit codes. */
function overrideExits(cmd: Command): void {
  for (const c of cmd.commands) {
    c.exitOverride();
    overrideExits(c);
  }
}
