import type { Command } from "commander";
import { writeFileAtomic } from "../../engine/output.js";
import { fail } from "../../format/errors.js";
import { formatIdentityFile, generateX25519Identity } from "../../keys/index.js";
import { checkOutput, printJson } from "../options.js";

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
    .action(async (o) => {
      if (o.json && !o.output) fail("E_USAGE", "--json needs -o FILE: stdout is the identity");
      const { recipient, text } = o.pq ? await pqIdentity() : x25519Identity();
      if (o.output) {
        checkOutput(o.output, o.force);
        // Mode 0600 from creation, and atomic: a crash never leaves half an identity, and
        // --force replaces the old one only once the new one is on disk.
        await writeFileAtomic(o.output, text, { exclusive: !o.force });
        if (o.json) printJson({ output: o.output, recipient });
        else process.stderr.write(`Public key: ${recipient}\n`);
      } else {
        process.stdout.write(text);
        process.stderr.write(`Public key: ${recipient}\n`);
      }
    });
}

function x25519Identity(): { recipient: string; text: string } {
  const { identity, recipient } = generateX25519Identity();
  return { recipient, text: formatIdentityFile(identity) };
}

/** Loaded on use: the X-Wing module pulls in ML-KEM. */
async function pqIdentity(): Promise<{ recipient: string; text: string }> {
  const { formatXWingIdentityFile, generateXWingIdentity } = await import("../../keys/xwing.js");
  const { identity, recipient } = await generateXWingIdentity();
  return { recipient, text: await formatXWingIdentityFile(identity) };
}
