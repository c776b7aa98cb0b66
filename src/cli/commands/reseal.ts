/**
 * `reseal`: registration only (commander options). The implementation (reseal-run.ts) is loaded
 * when the command runs, so start-up of every other command does not pay for it.
 */
import type { Command } from "commander";
import { collect } from "../options.js";
import { identityOptions } from "./shared.js";

export function registerReseal(program: Command): void {
  identityOptions(
    program
      .command("reseal")
      .description(
        "re-encrypt sealed files under a fresh file key (crash-safe, resumable, in place)",
      )
      .argument(
        "[paths...]",
        "sealed files, directories (every sealed file below, found by its magic bytes) or glob patterns",
      )
      .option("--manifest <file>", "also reseal the paths listed in FILE, one per line", collect)
      .option(
        "-r, --recipient <r>",
        "new recipient instead of the file's own: tseal1..., kek:NAME, pkcs11:TOKEN/KEY, aws-kms:KEY, service:NAME (repeatable)",
        collect,
      )
      .option("-k, --key <name>", "new recipient: keystore KEK NAME (repeatable)", collect)
      .option(
        "--known-recipient <tseal1...>",
        "public key of an x25519 stanza to keep (a stanza names only a hash of its key; repeatable)",
        collect,
      )
      .option(
        "--journal <file>",
        "resume journal (default .tensorseal-reseal-journal.jsonl in the current directory)",
      )
      .option("--concurrency <n>", "files resealed at once (1..64)", "2")
      .option(
        "--no-registry",
        "do not register resealed files with the key service (by default each artifact registered with an old service stanza gets the new file as its successor, before the rename)",
      )
      .option(
        "--json",
        "print JSON: {resealed, failed, resumed, skipped, files (with registered ids), skippedFiles, journalKept}",
      ),
  )
    .addHelpText(
      "after",
      "\nEach file gets a new file key, salt and nonce base; descriptor (context, labels, content\ntype, chunk size) and slot capacity stay. Without -r/-k every stanza is re-created for the\nsame holder (kek, kms, service, passphrase; x25519 from --known-recipient or -i); with them\nthe new recipients are exactly those named. Each file is replaced atomically: after a crash,\nrerun the same command. Lists every file with its old and new header digest (SHA-256 of the\nheader bytes); exit 1 if any file of several failed, a single file's own code otherwise.\nWith a key service (--server or TENSORSEAL_SERVER), each artifact registered with one of the\nfile's service stanzas gets the new file as its successor before the rename (the old entry is\nmarked superseded, not deleted); a refusal fails the file and leaves the old one in place.\n\nExamples:\n  tensorseal reseal model.tseal                      # same recipients, fresh file key\n  tensorseal reseal models/ 'ckpt/**/*.tseal' -i partner.key\n  tensorseal reseal model.tseal --known-recipient tseal1... -p\n  tensorseal reseal --manifest fleet.txt -r kek:default -r tseal1... --json\n  tensorseal reseal --manifest fleet.txt --journal /var/tmp/reseal.jsonl --concurrency 4\n  tensorseal --server https://kms:8443 reseal model.tseal   # registry: successor of its artifact\n  tensorseal reseal model.tseal -r kek:default --no-registry   # leaves the key service",
    )
    .action(async (paths: string[], o) => {
      const { runReseal } = await import("../reseal-run.js");
      await runReseal(paths, o);
    });
}
