import type { Command } from "commander";
import { collect } from "../options.js";

/** Options every command that reads a sealed file accepts. */
export function identityOptions(cmd: Command): Command {
  return cmd
    .option(
      "-i, --identity <file>",
      "identity file from `tensorseal keygen`, or an HSM/KMS key to allow for this run: aws-kms:KEY, pkcs11:TOKEN[/KEY] (repeatable)",
      collect,
    )
    .option(
      "-p, --passphrase",
      "the file was sealed to a passphrase (TENSORSEAL_PASSPHRASE or prompt)",
    )
    .option("--passphrase-file <file>", "the file passphrase is the first line of FILE")
    .option(
      "--attest <program>",
      "service stanzas: get the key by attested release, with evidence PROGRAM prints for the challenge (TENSORSEAL_ATTEST_COMMAND)",
    );
}
