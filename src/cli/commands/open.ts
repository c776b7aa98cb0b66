import type { Command } from "commander";
import type { OpenResult } from "../../engine/index.js";
import { inspectFile, openFile, openStream } from "../../engine/index.js";
import { fail, namingFile } from "../../format/errors.js";
import { leftoverMessage } from "../describe.js";
import { identitiesFor } from "../keys-context.js";
import {
  checkOutput,
  checkSealedInput,
  collect,
  isStreamInput,
  parsePairs,
  printJson,
} from "../options.js";
import { say } from "../output.js";
import { runStream } from "../streams.js";
import { progressBar } from "../terminal.js";
import { identityOptions } from "./shared.js";

export function registerOpen(program: Command): void {
  identityOptions(
    program
      .command("open")
      .description("decrypt a sealed file after authenticating all of it")
      .argument("<in>", "sealed file, or - for stdin")
      .option("-o, --output <file>", "output file, or - for stdout (default: IN without .tseal)")
      .option(
        "-c, --expect-context <k=v>",
        "require this encryption context entry (repeatable)",
        collect,
      )
      .option("-f, --force", "overwrite an existing output")
      .option("--json", "print a JSON result"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal open model.safetensors.tseal --expect-context tenant=acme   # -> model.safetensors\n  tensorseal open ckpt.tseal -i partner.id -o - | sha256sum\n  tensorseal open ckpt.pt.tseal -o restored.pt -i aws-kms:alias/models   # allow this KMS key for this run",
    )
    .action(async (input: string, o) => {
      checkSealedInput(input);
      const output: string = o.output ?? defaultOutput(input);
      checkOutput(output, o.force);
      const expectContext = parsePairs(o.expectContext, "--expect-context");
      if (output === "-" && o.json)
        fail("E_USAGE", "--json needs -o FILE: stdout is the plaintext");
      let result: OpenResult;
      const header = isStreamInput(input) ? null : await inspectFile(input);
      if (isStreamInput(input) || output === "-") {
        const identities = await identitiesFor(header, o);
        const open = () =>
          runStream(input, output, (r, w) => openStream(r, w, { identities, expectContext }));
        result = input === "-" ? await open() : await namingFile(input, open);
      } else {
        const identities = await identitiesFor(header, o);
        const bar = progressBar("opening");
        result = await openFile(input, output, {
          identities,
          expectContext,
          onProgress: bar.update,
        }).finally(() => bar.done());
      }
      // A reader SHOULD say when a rewrap was interrupted (spec/FORMAT.md §2.3).
      if (header && header.inactiveSlot.kind !== "empty") {
        say(`warning: ${input}: ${leftoverMessage(header)}`);
      }
      if (o.json) printJson({ output, ...result });
      else if (output !== "-") say(`opened ${input} -> ${output}`);
    });
}

function defaultOutput(input: string): string {
  if (input === "-") return "-";
  if (input.endsWith(".tseal")) return input.slice(0, -".tseal".length);
  return fail("E_USAGE", `cannot derive an output name from ${input}: pass -o FILE`);
}
