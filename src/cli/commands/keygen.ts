/**
 * `tensorseal keygen`: its flags and help; the implementation (actions/keygen.ts) loads when it
 * runs.
 */
import type { Command, OptionValues } from "commander";

export function registerKeygen(program: Command): void {
  program
    .command("keygen")
    .description("generate an X25519 identity; prints its public recipient string")
    .option("-o, --output <file>", "identity file to write (mode 0600); default stdout")
    .option("-f, --force", "overwrite an existing identity file")
    .option("--json", "print JSON with the recipient (needs -o: otherwise stdout is the identity)")
    .addHelpText(
      "after",
      "\nExample:\n  tensorseal keygen -o ~/.tensorseal/identity.txt   # share the printed tseal1... string",
    )
    .action(async (o: OptionValues) => (await import("../actions/keygen.js")).keygen(o));
}
