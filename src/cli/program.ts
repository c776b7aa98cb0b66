/**
 * The command tree: every command registers itself from commands/*.ts. Kept apart from main.ts
 * (which runs it and turns errors into exit codes) so tests can walk the tree without running
 * anything.
 */
import { Command } from "commander";
import { printableText } from "../format/printable.js";
import { registerAudit } from "./commands/audit.js";
import { registerDoctor } from "./commands/doctor.js";
import { registerExec } from "./commands/exec.js";
import { registerHsm } from "./commands/hsm.js";
import { registerInit } from "./commands/init.js";
import { registerInspect } from "./commands/inspect.js";
import { registerInventory } from "./commands/inventory.js";
import { registerKeygen } from "./commands/keygen.js";
import { registerKeys } from "./commands/keys.js";
import { registerOpen } from "./commands/open.js";
import { registerOpenDir } from "./commands/open-dir.js";
import { registerPolicy } from "./commands/policy.js";
import { registerReseal } from "./commands/reseal.js";
import { registerRewrap } from "./commands/rewrap.js";
import { registerRoot } from "./commands/root.js";
import { registerSeal } from "./commands/seal.js";
import { registerSealDir } from "./commands/seal-dir.js";
import { registerServe } from "./commands/serve.js";
import { registerServiceApprovals } from "./commands/service-approvals.js";
import { registerServiceArtifacts } from "./commands/service-artifacts.js";
import { registerServiceCert } from "./commands/service-cert.js";
import { registerServiceKeys } from "./commands/service-keys.js";
import { registerServicePrincipals } from "./commands/service-principals.js";
import { registerServiceRoot } from "./commands/service-root.js";
import { registerServiceToken } from "./commands/service-token.js";
import { registerVerify } from "./commands/verify.js";
import { setServiceUrl } from "./keys-context.js";

export function buildProgram(): Command {
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
    .hook("preAction", (cmd) => setServiceUrl(cmd.opts().server));
  for (const register of [
    registerInit,
    registerKeygen,
    registerKeys,
    registerSeal,
    registerOpen,
    registerInspect,
    registerVerify,
    registerRewrap,
    registerReseal,
    registerRoot,
    registerSealDir,
    registerOpenDir,
    registerExec,
    registerHsm,
    registerServe,
    registerServiceToken,
    registerServiceKeys,
    registerServiceArtifacts,
    registerServiceCert,
    registerServicePrincipals,
    registerServiceApprovals,
    registerServiceRoot,
    registerAudit,
    registerPolicy,
    registerDoctor,
    registerInventory,
  ]) {
    register(program);
  }
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
