import type { Command } from "commander";
import { inspectFile } from "../../engine/index.js";
import { manifestPath, openModelDir } from "../../integrations/model-dir/index.js";
import { identitiesFor } from "../keys-context.js";
import { printJson } from "../options.js";
import { say } from "../output.js";
import { progressBar } from "../terminal.js";
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
    .action(async (dir: string, o) => {
      const identities = await identitiesFor(await inspectFile(manifestPath(dir)), o);
      const bar = progressBar("opening");
      const m = await openModelDir(dir, o.output, { identities, onProgress: bar.update }).finally(
        () => bar.done(),
      );
      if (o.json) printJson({ output: o.output, model: m.model, files: m.files });
      else say(`opened ${m.files.length} files of ${dir} -> ${o.output}`);
    });
}
