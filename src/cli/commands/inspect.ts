/**
 * `tensorseal inspect`: its flags and help; the implementation (actions/inspect.ts) loads when
 * it runs.
 */
import type { Command, OptionValues } from "commander";
import { identityOptions } from "./shared.js";

export function registerInspect(program: Command): void {
  identityOptions(
    program
      .command("inspect")
      .description("show the public header of a sealed file; with a key, verify all of it")
      .argument("<file>", "sealed file")
      .option("--verify", "also authenticate the whole file with the available keys")
      .option("--tensors", "list the tensors of a sealed safetensors file (needs a key)")
      .option("--json", "print JSON"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal inspect model.tseal\n  tensorseal inspect model.tseal --verify --json\n  tensorseal inspect model.safetensors.tseal --tensors -i partner.id",
    )
    .action(async (file: string, o: OptionValues) =>
      (await import("../actions/inspect.js")).inspect(file, o),
    );
}
