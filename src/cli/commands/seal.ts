/**
 * `tensorseal seal`: its flags and help. The implementation (actions/seal.ts) loads only when
 * the command runs: start-up of every other command stays free of it.
 */
import type { Command, OptionValues } from "commander";
import { collect } from "../options.js";

export function registerSeal(program: Command): void {
  program
    .command("seal")
    .description("encrypt a file for one or more recipients")
    .argument("<in>", "file to seal, or - for stdin")
    .option("-o, --output <file>", "output file, or - for stdout (default: IN.tseal)")
    .option("-k, --key <name>", "keystore KEK to wrap the file key under (repeatable)", collect)
    .option(
      "-r, --recipient <r>",
      "recipient: tseal1... (keygen), kek:NAME, pkcs11:TOKEN/KEY, aws-kms:KEY, service:NAME (repeatable)",
      collect,
    )
    .option("-p, --passphrase", "also encrypt to a passphrase (TENSORSEAL_PASSPHRASE or prompt)")
    .option("--passphrase-file <file>", "also encrypt to a passphrase: the first line of FILE")
    .option(
      "-c, --context <k=v>",
      "encryption context entry, bound to the payload (repeatable)",
      collect,
    )
    .option("-l, --label <k=v>", "public label, readable without a key (repeatable)", collect)
    .option(
      "--tier <tier>",
      "sensitivity tier recorded in the authenticated header (.tensorseal.yaml tiers)",
    )
    .option("--purpose <text>", "purpose recorded in the authenticated header")
    .option("--owner <text>", "owner (team, mail) recorded in the authenticated header")
    .option(
      "--content-type <type>",
      "content type to record in the public header (default: detected from the input)",
    )
    .option("--chunk-size <size>", "payload chunk size, a power of two from 16KiB to 16MiB", "1MiB")
    .option("-f, --force", "overwrite an existing output")
    .option(
      "--sign <keyfile>",
      "sign the plaintext and the sealed file (OUT.sig, OpenSSF model-signing format) with this ECDSA P-256 private key (PEM)",
    )
    .option("--json", "print a JSON result")
    .option(
      "--register",
      "register the sealed file in the key service's artifact inventory (needs a service: recipient; labels from --label)",
    )
    .addHelpText(
      "after",
      "\nWithout -k, -r or a passphrase, the file is sealed to kek:default (or a .tensorseal.yaml rule).\n\nExamples:\n  tensorseal seal model.safetensors -c tenant=acme -l stage=prod   # -> model.safetensors.tseal\n  tensorseal seal ckpt.pt -r tseal1... -r kek:default              # a partner's public key and yours\n  tensorseal seal ckpt.pt -r aws-kms:alias/models -r pkcs11:backup-hsm/models\n  tensorseal seal ckpt.pt --passphrase-file pass.txt -o ckpt.pw.tseal\n  tensorseal seal ckpt.pt -r pkcs11:hsm/models --tier restricted --owner ml-platform --purpose fraud-model\n  tensorseal --server https://kms:8443 seal model.safetensors -r service:models --register\n  cat weights.bin | tensorseal seal - -o weights.tseal\n  tensorseal seal model.safetensors --sign producer.pem   # also model.safetensors.tseal.sig",
    )
    .action(async (input: string, flags: OptionValues, cmd: Command) =>
      (await import("../actions/seal.js")).seal(input, flags, cmd),
    );
}
