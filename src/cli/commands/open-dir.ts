/**
 * `tensorseal open-dir`: its flags and help; the implementation (actions/open-dir.ts) loads when
 * it runs.
 */
import type { Command, OptionValues } from "commander";
import { identityOptions } from "./shared.js";

export function registerOpenDir(program: Command): void {
  identityOptions(
    program
      .command("open-dir")
      .description("open a sealed model directory, checking every file against its manifest")
      .argument("<sealed-dir>", "directory made by `tensorseal seal-dir`")
      .requiredOption(
        "-o, --output <dir>",
        "directory to create (must not exist); appears atomically",
      )
      .option("--json", "print a JSON result"),
  )
    .addHelpText(
      "after",
      "\nA missing, extra, renamed or swapped file fails the whole open and creates nothing.\n\nExample:\n  tensorseal open-dir ./Llama-3-8B.sealed -o ./Llama-3-8B",
    )
    .action(async (dir: string, o: OptionValues) =>
      (await import("../actions/open-dir.js")).openDir(dir, o),
    );
}
