import type { Command } from "commander";
import { Keystore } from "../../keys/index.js";
import { homeDir, keystoreUnlock } from "../keys-context.js";
import { printJson } from "../options.js";
import { say } from "../output.js";

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("create the local keystore and its `default` key")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nThe root key is sealed by a passphrase (TENSORSEAL_KEYSTORE_PASSPHRASE or a prompt), or read\nfrom TENSORSEAL_ROOT_KEY_FILE (32 raw bytes or 64 hex characters) for automation.\nThe keystore lives in $TENSORSEAL_HOME (default ~/.tensorseal).\n\nExample:\n  TENSORSEAL_ROOT_KEY_FILE=/run/secrets/root.key tensorseal init",
    )
    .action(async (o) => {
      const home = homeDir();
      const ks = await Keystore.init(home, await keystoreUnlock({ confirm: true }));
      await ks.createKey("default");
      if (o.json) printJson({ home, keys: ["default"] });
      else say(`created keystore in ${home} with key "default"`);
    });
}
