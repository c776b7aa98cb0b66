import type { Command } from "commander";
import { printJson } from "../options.js";
import { print, say } from "../output.js";

export function registerHsm(program: Command): void {
  const hsm = program
    .command("hsm")
    .description("PKCS#11 HSM keys (module TENSORSEAL_PKCS11_MODULE, PIN TENSORSEAL_PKCS11_PIN)");
  hsm
    .command("create-key")
    .description("generate a non-extractable AES-256 key inside the token; prints its recipient")
    .argument("<token/label>", "token label, a slash, and the new key's label")
    .option("--json", "print JSON with the recipient")
    .addHelpText(
      "after",
      "\nExample:\n  TENSORSEAL_PKCS11_PIN_FILE=~/.hsm-pin tensorseal hsm create-key prod-hsm/models\n  tensorseal seal model.safetensors -r pkcs11:prod-hsm/models",
    )
    .action(async (ref: string, o) => {
      const { loadProvider, PKCS11_PROVIDER } = await import("../../keys/provider.js");
      const provider = await loadProvider(PKCS11_PROVIDER);
      const keyRef = await provider.generateKey!(ref);
      const recipient = `${PKCS11_PROVIDER}:${keyRef}`;
      if (o.json) printJson({ recipient });
      else {
        print(recipient);
        say(`created a non-extractable AES-256 key ${keyRef}`);
      }
    });
}
