import type { Command } from "commander";
import { sealFile, sealStream } from "../../engine/index.js";
import { detectContentType } from "../../integrations/content-type.js";
import { recipientsFor } from "../keys-context.js";
import { checkOutput, collect, parsePairs, parseSize, printJson } from "../options.js";
import { withCreationRule } from "../project-config.js";
import { runStream } from "../streams.js";
import { progressBar } from "../terminal.js";

export function registerSeal(program: Command): void {
  program
    .command("seal")
    .description("encrypt a file for one or more recipients")
    .argument("<in>", "file to seal, or - for stdin")
    .option("-o, --output <file>", "output file, or - for stdout (default: IN.tseal)")
    .option("-k, --key <name>", "keystore KEK to wrap the file key under (repeatable)", collect)
    .option("-r, --recipient <r>", "tseal1... public key or kek:NAME (repeatable)", collect)
    .option("-p, --passphrase", "also encrypt to a passphrase (TENSORSEAL_PASSPHRASE or prompt)")
    .option("--passphrase-file <file>", "read the passphrase from a file")
    .option(
      "-c, --context <k=v>",
      "encryption context entry, bound to the payload (repeatable)",
      collect,
    )
    .option("-l, --label <k=v>", "public label, readable without a key (repeatable)", collect)
    .option("--content-type <type>", "content type to record (default: detected)")
    .option("--chunk-size <size>", "payload chunk size, a power of two from 16KiB to 16MiB", "1MiB")
    .option("-f, --force", "overwrite an existing output")
    .option("--json", "print a JSON result")
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal seal model.safetensors -o model.safetensors.tseal\n  tensorseal seal ckpt.bin -r tseal1... -c tenant=acme\n  cat weights.bin | tensorseal seal - -o weights.tseal",
    )
    .action(async (input: string, flags, cmd: Command) => {
      // Defaults from the first matching creation rule of .tensorseal.yaml; flags override.
      const explicitChunk = cmd.getOptionValueSource("chunkSize") !== "default";
      const o = withCreationRule(input, flags, explicitChunk);
      const output: string = o.output ?? (input === "-" ? "-" : `${input}.tseal`);
      checkOutput(output, o.force);
      const recipients = await recipientsFor(o);
      const opts = {
        recipients,
        chunkSize: parseSize(o.chunkSize),
        contentType: o.contentType ?? (input === "-" ? undefined : await detectContentType(input)),
        context: parsePairs(o.context, "--context"),
        labels: parsePairs(o.label, "--label"),
      };
      if (input === "-" || output === "-") {
        await runStream(input, output, (r, w) => sealStream(r, w, opts));
        return;
      }
      const bar = progressBar("sealing");
      const result = await sealFile(input, output, { ...opts, onProgress: bar.update });
      bar.done();
      if (o.json) printJson({ output, recipients: recipients.map((r) => r.id), ...result });
      else
        process.stderr.write(
          `tensorseal: sealed ${input} -> ${output} for ${recipients.map((r) => r.id).join(", ")}\n`,
        );
    });
}
