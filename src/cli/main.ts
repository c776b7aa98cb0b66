#!/usr/bin/env node
/**
 * The `tensorseal` command: a thin shell over the library. Each command lives in
 * commands/*.ts; errors become exit codes only here (exit-codes.ts).
 */
import { Command, CommanderError } from "commander";
import { isTensorSealError } from "../format/errors.js";
import { printable, printableText } from "../format/printable.js";
import { registerAudit } from "./commands/audit.js";
import { registerExec } from "./commands/exec.js";
import { registerHsm } from "./commands/hsm.js";
import { registerInit } from "./commands/init.js";
import { registerInspect } from "./commands/inspect.js";
import { registerKeygen } from "./commands/keygen.js";
import { registerKeys } from "./commands/keys.js";
import { registerOpen } from "./commands/open.js";
import { registerOpenDir } from "./commands/open-dir.js";
import { registerPolicy } from "./commands/policy.js";
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
import { EXIT, exitCodeFor } from "./exit-codes.js";
import { closeKeystore, setServiceUrl } from "./keys-context.js";

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

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: "user" });
    await closeKeystore(); // keys' usage counters: give back unused reserved wraps
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (e) {
    await closeKeystore().catch(() => {}); // failing to give back only over-counts
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return report(e);
  }
}

/**
 * One line on stderr for any error, and its exit code: never a stack trace. Messages are
 * escaped as the last line of defence (they may quote a header, a name, a path).
 */
function report(e: unknown): number {
  if (isTensorSealError(e)) {
    process.stderr.write(`tensorseal: error: ${printable(e.message)}\n`);
    return exitCodeFor(e.code);
  }
  const err = e as NodeJS.ErrnoException;
  if (err?.code === "EPIPE") return EXIT.brokenPipe; // the reader stopped reading: say nothing
  if (err?.code && typeof err.code === "string" && err.syscall) {
    const what = `${err.syscall}${err.path ? ` ${err.path}` : ""}`;
    process.stderr.write(`tensorseal: error: cannot ${printable(what)}: ${printable(err.code)}\n`);
    return EXIT.io;
  }
  process.stderr.write(
    `tensorseal: internal error: ${printable(String(err?.message ?? e))} (please report it)\n`,
  );
  return EXIT.internal;
}

/** Errors outside the command's promise (a stream's "error" event, a closed stdout). */
function reportAndExit(e: unknown): void {
  process.exitCode = report(e);
  process.exit();
}

process.on("uncaughtException", reportAndExit);
process.on("unhandledRejection", reportAndExit);
// A failed write to stdout (EPIPE, ENOSPC). A stream command's pipeline also destroys stdout
// with its own error: that one the command's promise reports, with the file's name.
process.stdout.on("error", (e) => {
  if (!isTensorSealError(e)) reportAndExit(e);
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
