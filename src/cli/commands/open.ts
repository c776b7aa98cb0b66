/**
 * `tensorseal open`: its flags and help; the implementation (actions/open.ts) loads when it runs.
 */
import type { Command, OptionValues } from "commander";
import { collect } from "../options.js";
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
      .option(
        "--require-encrypted",
        "refuse a public (integrity-only, not encrypted) file (exit 5, E_NOT_ENCRYPTED)",
      )
      .option(
        "--require-signer <pubkey>",
        "refuse the file unless IN.sig (seal --sign) is this ECDSA public key's (PEM) signature of it",
      )
      .option("--json", "print a JSON result"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal open model.safetensors.tseal --expect-context tenant=acme   # -> model.safetensors\n  tensorseal open ckpt.tseal -i partner.id -o - | sha256sum\n  tensorseal open ckpt.pt.tseal -o restored.pt -i aws-kms:alias/models   # allow this KMS key for this run\n  tensorseal open model.safetensors.tseal --require-signer producer.pub\n  tensorseal open config.json.tseal   # a public-tier file: no key needed\n  tensorseal open weights.tseal --require-encrypted   # refuse a public (unencrypted) file",
    )
    .action(async (input: string, o: OptionValues) =>
      (await import("../actions/open.js")).open(input, o),
    );
}
