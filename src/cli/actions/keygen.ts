/** `tensorseal keygen`: a new X25519 or post-quantum identity (flags: commands/keygen.ts). */
import type { OptionValues } from "commander";
import { writeFileAtomic } from "../../engine/output.js";
import { fail } from "../../format/errors.js";
import { formatIdentityFile, generateX25519Identity } from "../../keys/index.js";
import { checkOutput, printJson } from "../options.js";

export async function keygen(o: OptionValues): Promise<void> {
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
