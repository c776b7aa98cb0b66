/**
 * `tensorseal init`: its flags and help; the implementation (actions/init.ts) loads when it runs.
 */
import type { Command, OptionValues } from "commander";

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("create the local keystore and its `default` key")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nThe root key is sealed by a passphrase (TENSORSEAL_KEYSTORE_PASSPHRASE or a prompt), or read\nfrom TENSORSEAL_ROOT_KEY_FILE (32 raw bytes or 64 hex characters) for automation.\nThe keystore lives in $TENSORSEAL_HOME (default ~/.tensorseal).\n\nExample:\n  TENSORSEAL_ROOT_KEY_FILE=/run/secrets/root.key tensorseal init",
    )
    .action(async (o: OptionValues) => (await import("../actions/init.js")).init(o));
}
