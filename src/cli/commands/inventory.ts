/**
 * `tensorseal inventory`: the keys, their versions and the sealed artifacts (src/inventory/).
 * Registration only: the implementation (and the CycloneDX library) load in the action.
 */
import type { Command } from "commander";

export function registerInventory(program: Command): void {
  program
    .command("inventory")
    .description(
      "list keys (versions, states, rotation due dates, files per version) and sealed artifacts (recipients, labels, header digests, last release)",
    )
    .argument(
      "[paths...]",
      "files or directories to scan for sealed files (found by their magic bytes, not their names)",
    )
    .option("--format <format>", "table, json or cyclonedx (a CycloneDX 1.6 CBOM)", "table")
    .option("--json", "same as --format json")
    .addHelpText(
      "after",
      `
Keys come from the keystore in $TENSORSEAL_HOME (read without a prompt; its MAC is checked when
TENSORSEAL_ROOT_KEY_FILE or TENSORSEAL_KEYSTORE_PASSPHRASE is set), from the key service with
--server (or TENSORSEAL_SERVER; GET /v1/keys needs the admin scope) and from the files found.
With a server, its artifact registry is listed (admin or reader) and each artifact's last
release is read from the audit (audit scope); a part the token may not read is left out with a
note. Rotation due dates use the key's rotation period, else doctor.rotation_period in
.tensorseal.yaml (default 365d). No key material is read or printed.

Examples:
  tensorseal inventory models/
  tensorseal inventory --json models/ checkpoints/
  tensorseal inventory --format cyclonedx models/ > cbom.json
  tensorseal inventory --server https://keys.example.com:8443 models/`,
    )
    .action(async (paths: string[], o, cmd: Command) => {
      const { inventoryCommand } = await import("../actions/inventory.js");
      await inventoryCommand(paths, { ...o, server: cmd.optsWithGlobals().server });
    });
}
