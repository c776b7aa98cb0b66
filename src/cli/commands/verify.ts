/**
 * `tensorseal verify`: its flags and help; the implementation (actions/verify.ts) loads when it
 * runs.
 */
import type { Command, OptionValues } from "commander";
import { EXIT } from "../exit-codes.js";
import { identityOptions } from "./shared.js";

export function registerVerify(program: Command): void {
  identityOptions(
    program
      .command("verify")
      .description("authenticate header, commitment and every chunk; write nothing")
      .argument("<files...>", "sealed files (sealed model directories with --require-signer)")
      .option(
        "--require-signer <pubkey>",
        "check sealed model directories' model.sig against this ECDSA public key (PEM): signer, file set, sealed digests; no key needed",
      )
      .option(
        "--require-encrypted",
        "count a public (integrity-only, not encrypted) file as a failure (exit 5, E_NOT_ENCRYPTED)",
      )
      .option(
        "--json",
        "print JSON: [{file, ok, leftoverSlot?, warning?, code?, error?}] (also when a file fails)",
      ),
  )
    .addHelpText(
      "after",
      `\nExit ${EXIT.ok} when every file is authentic and clean; a failing file's own code (${EXIT.authentication} when it is\nnot authentic, ${EXIT.noKey} without a key...); ${EXIT.leftoverSlot} when all are authentic but one still carries a header\nslot left by an interrupted rewrap (STALE): a rewrap of that file clears it.\n\nExamples:\n  tensorseal verify model.safetensors.tseal\n  tensorseal verify --json ckpt/*.tseal\n  tensorseal verify --require-encrypted weights/*.tseal   # a public file fails\n  tensorseal verify --require-signer producer.pub ./Llama-3-8B.sealed`,
    )
    .action(async (files: string[], o: OptionValues) =>
      (await import("../actions/verify.js")).verify(files, o),
    );
}
