import { rm, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { formatIdentityFile, generateX25519Identity } from "../../keys/index.js";
import { checkOutput, printJson } from "../options.js";

export function registerKeygen(program: Command): void {
  program
    .command("keygen")
    .description("generate an X25519 identity; prints its public recipient string")
    .option("-o, --output <file>", "identity file to write (mode 0600); default stdout")
    .option("-f, --force", "overwrite an existing identity file")
    .option("--json", "print JSON with the recipient")
    .addHelpText(
      "after",
      "\nExample:\n  tensorseal keygen -o ~/.tensorseal/identity.txt   # share the printed tseal1... string",
    )
    .action(async (o) => {
      const { identity, recipient } = generateX25519Identity();
      const text = formatIdentityFile(identity);
      if (o.output) {
        checkOutput(o.output, o.force);
        if (o.force) await rm(o.output, { force: true });
        // Exclusive create with mode 0600: the secret never exists with wider permissions.
        await writeFile(o.output, text, { mode: 0o600, flag: "wx" });
        if (o.json) printJson({ output: o.output, recipient });
        else process.stderr.write(`Public key: ${recipient}\n`);
      } else {
        process.stdout.write(text);
        process.stderr.write(`Public key: ${recipient}\n`);
      }
    });
}
