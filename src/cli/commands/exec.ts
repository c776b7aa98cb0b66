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
      )
      .option(
        "--seal-outputs <dir>",
        "give the command a RAM directory for its outputs (TENSORSEAL_OUTPUT_DIR); when it ends, seal them into DIR",
      )
      .option(
        "-k, --key <name>",
        "with --seal-outputs: keystore KEK to seal to (repeatable)",
        collect,
      )
      .option(
        "-r, --recipient <r>",
        "with --seal-outputs: recipient, as for seal: tseal1..., kek:NAME, pkcs11:..., aws-kms:..., service:NAME (repeatable)",
        collect,
      )
      .option("-f, --force", "with --seal-outputs: replace DIR if it holds earlier sealed outputs")
      .option(
        "--require-signer <pubkey>",
        "refuse any model that is not a sealed directory signed by this ECDSA public key (PEM; seal-dir --sign)",
      )
      .option(
        "--require-encrypted",
        "refuse a sealed file model that is public (integrity-only, not encrypted): exit 5 (a directory's files are held to its manifest)",
      ),
  )
    .addHelpText(
      "after",
      "\nThe command gets TENSORSEAL_MODEL (first --model) and TENSORSEAL_MODEL_<NAME>, and only an\nallow-listed environment (PATH, HOME, locale, CUDA_*, HF_*, PYTHON*, ...; docs/INTEGRATIONS.md);\nvariables that unlock keys are never passed. Its exit code is passed through (128+N when\nsignal N killed it; 127: command not found, 126: not executable). If tensorseal is killed,\nthe command's process group is killed and the plaintext wiped.\n\n--seal-outputs DIR: the command writes into TENSORSEAL_OUTPUT_DIR (RAM); when it exits (also\nafter a signal) its regular files are sealed (-r/-k; default: the keystore's default key) into\nDIR, a sealed directory that open-dir opens, and wiped; links and special files are refused.\nIf tensorseal is SIGKILLed the outputs are lost, never left in plaintext.\n\nExamples:\n  tensorseal exec -m llama.gguf.tseal -- llama-server -m {model}\n  tensorseal exec -m Llama-3-8B.sealed:llm --env HF_TOKEN -- vllm serve {llm}\n  tensorseal exec -m w.safetensors.tseal -- python infer.py --weights {model}\n  tensorseal exec -m base.sealed:base --seal-outputs run1.sealed -r tseal1... -- python train.py --base {base}\n  tensorseal open-dir run1.sealed -o run1\n  tensorseal exec -m Llama-3-8B.sealed:llm --require-signer producer.pub -- vllm serve {llm}",
    )
    .action(async (command: string[], o: OptionValues) =>
      (await import("../actions/exec.js")).exec(command, o),
    );
}
