/**
 * `tensorseal exec -m MODEL -- CMD`: run a command over sealed models opened into RAM (flags:
 * commands/exec.ts).
 */
import type { OptionValues } from "commander";
import { inspectFile } from "../../engine/index.js";
import { fail } from "../../format/errors.js";
import { ExecError, execWithSealedModels, parseModelSpec } from "../../integrations/exec.js";
import { identitiesFor } from "../keys-context.js";
import { say } from "../output.js";
import { progressBar } from "../terminal.js";

export async function exec(command: string[], o: OptionValues): Promise<void> {
  const grace = Number(o.grace);
  if (!Number.isFinite(grace) || grace < 0) fail("E_USAGE", "--grace expects seconds >= 0");
  try {
    process.exitCode = await execWithSealedModels({
      models: (o.model as string[]).map(parseModelSpec),
      command,
      tmpfs: o.tmpfs,
      graceMs: grace * 1000,
      envAllow: (o.env as string[] | undefined) ?? [],
      identitiesFor: async (file) => identitiesFor(await inspectFile(file), o),
      progress: progressBar("opening"), // erased before the command starts
    });
  } catch (e) {
    if (!(e instanceof ExecError)) throw e;
    say(`error: ${e.message}`);
    process.exitCode = e.exitCode;
  }
}
