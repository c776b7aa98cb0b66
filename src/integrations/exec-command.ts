/**
 * Finding the command before anything is decrypted, with the shell's exit codes: 127 when it
 * does not exist, 126 when it exists but cannot be executed. Checking first means a typo costs
 * nothing: no RAM directory, no key release, no plaintext.
 */
import { accessSync, constants, statSync } from "node:fs";
import { resolve } from "node:path";
import { printable } from "../format/printable.js";

/** The command could not be started; `exitCode` follows the shell (126, 127). */
export class ExecError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = "ExecError";
  }
}

/** execvp's search path when PATH is unset. */
const DEFAULT_PATH = "/bin:/usr/bin";

/** The file execvp would run for `program` under `pathVar`, or an ExecError (126 / 127). */
export function resolveCommand(program: string, pathVar: string | undefined): string {
  const candidates = program.includes("/")
    ? [resolve(program)]
    : program === ""
      ? []
      : (pathVar ?? DEFAULT_PATH).split(":").map((d) => resolve(d || ".", program));
  let refused: string | null = null;
  for (const file of candidates) {
    try {
      if (statSync(file).isDirectory()) {
        refused ??= "is a directory";
        continue;
      }
    } catch {
      continue; // missing (or a dangling link): try the next directory, as execvp does
    }
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      refused ??= "permission denied";
    }
  }
  throw commandError(program, refused === null ? "ENOENT" : "EACCES", refused ?? undefined);
}

/** The error for a failed start (an errno code from spawn or from resolveCommand). */
export function commandError(program: string, code: string, why?: string): ExecError {
  const reason =
    why ?? (code === "ENOENT" ? "not found" : code === "EACCES" ? "permission denied" : code);
  return new ExecError(
    code === "ENOENT" ? 127 : 126,
    `cannot run ${printable(program)}: ${reason}`,
  );
}
