/**
 * `tensorseal rewrap`: its flags and help; the implementation (actions/rewrap.ts) loads when it
 * runs.
 */
import type { Command, OptionValues } from "commander";
import { DEFAULT_JOURNAL } from "../../keys/campaign-defaults.js";
import { collect } from "../options.js";
import { identityOptions } from "./shared.js";

export function registerRewrap(program: Command): void {
  identityOptions(
    program
      .command("rewrap")
      .description(
        "change who can open files by rewriting only their headers (crash-safe, in place)",
      )
      .argument(
        "[paths...]",
        "sealed files, directories (every sealed file below, found by its magic bytes) or glob patterns",
      )
      .option(
        "-a, --add-recipient <r>",
        "recipient to add: tseal1..., kek:NAME, pkcs11:TOKEN/KEY, aws-kms:KEY, service:NAME (repeatable)",
        collect,
      )
      .option(
        "-d, --remove-recipient <r>",
        "recipient to remove: as --add-recipient, or passphrase (repeatable)",
        collect,
      )
      .option(
        "--to-latest",
        "rewrap kek and key service stanzas under the primary version of their key",
      )
      .option(
        "--registry",
        "with --to-latest: the files are the key service's registered artifacts on old versions (their recorded locations); moves each registration to the new stanza and reports what is still old",
      )
      .option("--key <name>", "with --registry: only artifacts of this service key")
      .option(
        "--no-registry",
        "do not move the key service's registrations to the stanzas this rewrap makes (by default a registered service stanza re-wrapped or replaced is followed before the old header slot is cleared)",
      )
      .option("--manifest <file>", "also rewrap the paths listed in FILE, one per line", collect)
      .option("--journal <file>", `resume journal for --to-latest (default ${DEFAULT_JOURNAL})`)
      .option("--concurrency <n>", "files rewrapped at once with --to-latest (1..256)", "8")
      .option("--json", "print JSON"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal rewrap model.tseal --add-recipient tseal1...\n  tensorseal rewrap model.tseal --remove-recipient tseal1... --remove-recipient passphrase\n  tensorseal keys rotate default && tensorseal rewrap --to-latest models/ 'ckpt/**/*.tseal'\n  tensorseal rewrap --to-latest --manifest fleet.txt --journal /var/tmp/rotation.jsonl --json\n  tensorseal --server https://keys.example.com:8443 rewrap --to-latest --registry --key llm\n  tensorseal --server https://keys.example.com:8443 rewrap --to-latest model.tseal   # its registration follows\n  tensorseal rewrap --to-latest model.tseal --no-registry   # leaves the registry naming the old stanza\n\n--to-latest alone runs a campaign: parallel, resumable (rerun the same command after a\ncrash), with a summary `rewrapped N, already current M, failed K`; exit 1 if any failed.\nEvery rewrap first clears a header slot an interrupted rewrap left behind, and says so.\nWith a key service, an artifact registered with a service stanza the rewrap replaces moves\nto the new stanza (POST /v1/artifacts/restanza) before the old header slot is cleared; a\nrefusal restores the old header and fails the file.",
    )
    .action(async (paths: string[], o: OptionValues) =>
      (await import("../actions/rewrap.js")).rewrap(paths, o),
    );
}
