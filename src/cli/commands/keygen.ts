import type { Command, OptionValues } from "commander";

export function registerKeygen(program: Command): void {
  program
    .command("keygen")
    .description("generate an X25519 identity; prints its public recipient string")
    .option(
      "--pq",
      "post-quantum hybrid identity instead (ML-KEM-768 + X25519, X-Wing): TSEAL-SECRET-KEY-PQ-1... / tseal1pq1...",
    )
    .option("-o, --output <file>", "identity file to write (mode 0600); default stdout")
    .option("-f, --force", "overwrite an existing identity file")
    .option("--json", "print JSON with the recipient (needs -o: otherwise stdout is the identity)")
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  tensorseal keygen -o ~/.tensorseal/identity.txt   # share the printed tseal1... string",
        "  tensorseal keygen --pq -o ~/.tensorseal/pq.txt    # post-quantum: share tseal1pq1...",
        "  tensorseal seal model.safetensors -r tseal1pq1... -o model.tseal",
        "  tensorseal open model.tseal -i ~/.tensorseal/pq.txt -o model.safetensors",
      ].join("\n"),
    )
    .action(async (o: OptionValues) => (await import("../actions/keygen.js")).keygen(o));
}
