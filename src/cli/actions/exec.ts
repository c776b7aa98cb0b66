/**
 * `tensorseal exec -m MODEL -- CMD`: run a command over sealed models opened into RAM, its
 * outputs sealed when it ends with --seal-outputs (flags: commands/exec.ts).
 */
import type { OptionValues } from "commander";
import { inspectFile } from "../../engine/index.js";
import { fail } from "../../format/errors.js";
import { ExecError, execWithSealedModels, parseModelSpec } from "../../integrations/exec.js";
import { loadSignerKey } from "../../integrations/provenance/dsse.js";
import { identitiesFor, recipientsFor } from "../keys-context.js";
import { say } from "../output.js";
import { progressBar } from "../terminal.js";

export async function exec(command: string[], o: OptionValues): Promise<void> {
  const grace = Number(o.grace);
  if (!Number.isFinite(grace) || grace < 0) fail("E_USAGE", "--grace expects seconds >= 0");
  if (!o.sealOutputs && (o.key || o.recipient || o.force)) {
    fail("E_USAGE", "-k, -r and --force of exec go with --seal-outputs DIR");
  }
  const requireSigner = o.requireSigner ? loadSignerKey(o.requireSigner) : undefined;
  const outputs = o.sealOutputs && {
    dir: o.sealOutputs as string,
    force: o.force === true,
    recipients: await recipientsFor({ key: o.key, recipient: o.recipient }),
  };
  try {
    process.exitCode = await execWithSealedModels({
      models: (o.model as string[]).map(parseModelSpec),
      command,
      tmpfs: o.tmpfs,
      graceMs: grace * 1000,
      envAllow: (o.env as string[] | undefined) ?? [],
      identitiesFor: async (file) => identitiesFor(await inspectFile(file), o),
      progress: progressBar("opening"), // erased before the command starts
      ...(outputs && { outputs }),
      ...(requireSigner && { requireSigner }),
      requireEncrypted: Boolean(o.requireEncrypted),
    });
  } catch (e) {
    if (!(e instanceof ExecError)) throw e;
    say(`error: ${e.message}`);
    process.exitCode = e.exitCode;
  }
}
