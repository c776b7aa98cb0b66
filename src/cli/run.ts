/**
 * One run of the CLI: parses the command line with a command tree, and turns every error into one
 * line on stderr and an exit code (exit-codes.ts): never a stack trace. Shared by the whole CLI
 * (main.ts) and the one-command bundles (fast/*.ts).
 */
import { type Command, CommanderError } from "commander";
import { isTensorSealError } from "../format/errors.js";
import { printable } from "../format/printable.js";
import { EXIT, exitCodeFor } from "./exit-codes.js";
import { endCommand } from "./session.js";
import { watchStdio, whenCreated } from "./stdio.js";

/** The command tree for a command line (program.ts's buildProgram, or one command's). */
export type Build = (argv: readonly string[]) => Command | Promise<Command>;

async function main(argv: string[], build: Build): Promise<number> {
  try {
    await (await build(argv)).parseAsync(argv, { from: "user" });
    await endCommand(); // keys' usage counters: give back unused reserved wraps
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (e) {
    await endCommand().catch(() => {}); // failing to give back only over-counts
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

/**
 * Runs the command line of this process with the command tree `build` returns, and sets the exit
 * code. Also catches errors outside the command's promise.
 */
export function runCli(build: Build): void {
  process.on("uncaughtException", reportAndExit);
  process.on("unhandledRejection", reportAndExit);
  // The stdio streams are created only when used (stdio.ts): seal -o and open -o need neither,
  // and lines printed to a file, pipe or /dev/null go without them.
  watchStdio();
  // A failed write to stdout (EPIPE, ENOSPC). A stream command's pipeline also destroys stdout
  // with its own error: that one the command's promise reports, with the file's name.
  whenCreated("stdout", (stdout) =>
    stdout.on("error", (e) => {
      if (!isTensorSealError(e)) reportAndExit(e);
    }),
  );
  main(process.argv.slice(2), build).then((code) => {
    process.exitCode = code;
  });
}
