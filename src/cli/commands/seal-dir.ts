/**
 * `tensorseal seal-dir`: its flags and help; the implementation (actions/seal-dir.ts) loads when
 * it runs.
 */
import type { Command, OptionValues } from "commander";
import { collect } from "../options.js";

export function registerSealDir(program: Command): void {
  program
    .command("seal-dir")
    .description("seal every file of a model directory, with a sealed manifest of their digests")
    .argument("<dir>", "model directory (config.json, tokenizer, *.safetensors shards, ...)")
    .requiredOption("-o, --output <dir>", "sealed directory to create (must not exist)")
    .option("-k, --key <name>", "keystore KEK to wrap the file keys under (repeatable)", collect)
    .option(
      "-r, --recipient <r>",
      "recipient: tseal1... (keygen), kek:NAME, pkcs11:TOKEN/KEY, aws-kms:KEY, service:NAME (repeatable)",
      collect,
    )
    .option("-p, --passphrase", "also encrypt to a passphrase (TENSORSEAL_PASSPHRASE or prompt)")
    .option("--passphrase-file <file>", "also encrypt to a passphrase: the first line of FILE")
    .option("-c, --context <k=v>", "extra encryption context for every file (repeatable)", collect)
    .option("-l, --label <k=v>", "public label on every file (repeatable)", collect)
    .option(
      "--tier <tier>",
      "sensitivity tier recorded in the authenticated header (.tensorseal.yaml tiers)",
    )
    .option("--purpose <text>", "purpose recorded in the authenticated header")
    .option("--owner <text>", "owner (team, mail) recorded in the authenticated header")
    .option("--chunk-size <size>", "payload chunk size, a power of two from 16KiB to 16MiB", "1MiB")
    .option(
      "--sign <keyfile>",
      "sign the sealed model (OUT/model.sig, OpenSSF model-signing format) with this ECDSA P-256 private key (PEM)",
    )
    .option("--json", "print a JSON result")
    .addHelpText(
      "after",
      "\nEach file becomes OUT/<path>.tseal, bound to its path and to this model by its encryption\ncontext; OUT/tensorseal-manifest.json.tseal lists every path, size and SHA-256. A file's tier\nis --tier, else the tier of the first .tensorseal.yaml creation rule matching DIR/PATH.\n--sign KEY also writes OUT/model.sig, verifiable by `model_signing verify key` on the opened\ndirectory and by --require-signer of open-dir, exec and verify (docs/PROVENANCE.md).\n\nExamples:\n  tensorseal seal-dir ./Llama-3-8B -o ./Llama-3-8B.sealed\n  tensorseal seal-dir ./Llama-3-8B -o ./Llama-3-8B.sealed -r tseal1... -l team=ml\n  tensorseal seal-dir ./Llama-3-8B -o ./sealed -k prod --tier confidential --owner ml-platform\n  tensorseal seal-dir ./Llama-3-8B -o ./Llama-3-8B.sealed --sign signing-key.pem",
    )
    .action(async (dir: string, o: OptionValues) =>
      (await import("../actions/seal-dir.js")).sealDir(dir, o),
    );
}
