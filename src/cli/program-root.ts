/**
 * The root of the command tree: the program, its global options and exit behaviour, with the
 * given commands registered. Kept apart from program.ts (which knows every command and loads
 * them on demand) so that a one-command bundle (fast/*.ts) holds only its own command.
 */
import { Command } from "commander";
import { printableText } from "../format/printable.js";
import { setServerUrl } from "./session.js";

/** Adds one top-level command (commands/*.ts). */
export type Register = (program: Command) => void;

export function newProgram(registers: readonly Register[]): Command {
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
