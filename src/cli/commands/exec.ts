import type { Command } from "commander";
import { inspectFile } from "../../engine/index.js";
import { fail } from "../../format/errors.js";
import { execWithSealedModels, parseModelSpec } from "../../integrations/exec.js";
import { identitiesFor } from "../keys-context.js";
import { collect } from "../options.js";
import { identityOptions } from "./shared.js";

export function registerExec(program: Command): void {
  identityOptions(
    program
      .command("exec")
      .description("open sealed models into a private RAM directory, run a command, then wipe them")
      .argument("<command...>", "the command and its arguments, after --")
      .requiredOption(
        "-m, --model <sealed[:NAME]>",
        "sealed file or sealed model directory; {model} / {NAME} in the command become its path (repeatable)",
        collect,
      )
      .option(
        "--tmpfs <dir>",
        "RAM-backed directory for the plaintext (tmpfs or ramfs)",
        "/dev/shm",
      )
      .option(
        "--grace <seconds>",
        "after forwarding a signal, SIGKILL the command after this long",
        "10",
      ),
  )
    .addHelpText(
      "after",
      "\nThe command gets TENSORSEAL_MODEL (first --model) and TENSORSEAL_MODEL_<NAME>; its exit code\nis passed through (128+N when signal N killed it). Keystore and passphrase variables are\nremoved from its environment.\n\nExamples:\n  tensorseal exec -m llama.gguf.tseal -- llama-server -m {model}\n  tensorseal exec -m sealed-model/:llm -- vllm serve {llm}\n  tensorseal exec -m w.safetensors.tseal -- python infer.py --weights {model}",
    )
    .action(async (command: string[], o) => {
      const grace = Number(o.grace);
      if (!Number.isFinite(grace) || grace < 0) fail("E_USAGE", "--grace expects seconds >= 0");
      process.exitCode = await execWithSealedModels({
        models: (o.model as string[]).map(parseModelSpec),
        command,
        tmpfs: o.tmpfs,
        graceMs: grace * 1000,
        identitiesFor: async (file) => identitiesFor(await inspectFile(file), o),
      });
    });
}
