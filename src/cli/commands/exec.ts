/**
 * `tensorseal exec`: its flags and help; the implementation (actions/exec.ts) loads when it runs.
 */
import type { Command, OptionValues } from "commander";
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
        "--env <name>",
        "also pass this environment variable (or pattern, e.g. 'WANDB_*') to the command (repeatable)",
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
      "\nThe command gets TENSORSEAL_MODEL (first --model) and TENSORSEAL_MODEL_<NAME>, and only an\nallow-listed environment (PATH, HOME, locale, CUDA_*, HF_*, PYTHON*, ...; docs/INTEGRATIONS.md);\nvariables that unlock keys are never passed. Its exit code is passed through (128+N when\nsignal N killed it; 127: command not found, 126: not executable). If tensorseal is killed,\nthe command's process group is killed and the plaintext wiped.\n\nExamples:\n  tensorseal exec -m llama.gguf.tseal -- llama-server -m {model}\n  tensorseal exec -m Llama-3-8B.sealed:llm --env HF_TOKEN -- vllm serve {llm}\n  tensorseal exec -m w.safetensors.tseal -- python infer.py --weights {model}",
    )
    .action(async (command: string[], o: OptionValues) =>
      (await import("../actions/exec.js")).exec(command, o),
    );
}
