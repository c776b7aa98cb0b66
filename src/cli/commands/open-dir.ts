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
      .option(
        "--require-signer <pubkey>",
        "refuse the model unless its model.sig is signed by this ECDSA public key (PEM) and covers every file",
      )
      .option("--json", "print a JSON result"),
  )
    .addHelpText(
      "after",
      "\nA missing, extra, renamed or swapped file fails the whole open and creates nothing.\n--require-signer: an unsigned model, another signer, or a file not covered by the signature is\nrefused (exit 5, E_SIGNATURE) before anything is decrypted.\n\nExamples:\n  tensorseal open-dir ./Llama-3-8B.sealed -o ./Llama-3-8B\n  tensorseal open-dir ./Llama-3-8B.sealed -o ./Llama-3-8B --require-signer producer.pub",
    )
    .action(async (dir: string, o: OptionValues) =>
      (await import("../actions/open-dir.js")).openDir(dir, o),
    );
}
