/**
 * The commands users run most, each shipped as a CommonJS bundle of its own (fast/NAME.ts ->
 * dist/cli/NAME.cjs, scripts/build-cli.mjs) that bin.ts loads instead of the whole CLI: one file,
 * no ES module loader, start-up measured in bench/startup.ts (issue #11). "version" is a lone
 * `--version`. Every other command line runs the whole CLI (main.ts). Imports only argv.ts and
 * node:fs: bin.ts, which every run loads first, holds it.
 */
import { statSync } from "node:fs";
import { firstOperand, versionOnly } from "./argv.js";

export const FAST_COMMANDS = ["inspect", "seal", "open", "verify"] as const;

/** The bundle (fast/NAME.ts) that runs `argv`, or null for the whole CLI. */
export function fastBundleFor(argv: readonly string[]): string | null {
  if (versionOnly(argv)) return "version";
  const name = firstOperand(argv);
  return (FAST_COMMANDS as readonly (string | null)[]).includes(name) ? name : null;
}

/** From this much input on, a command is a long run (code-cache.ts LEAN_V8_FLAGS). */
export const LONG_RUN_BYTES = 64 << 20;

/**
 * Whether `argv` (a seal, open or verify) is a long run: one of its operands is a URL, or names
 * a regular file of LONG_RUN_BYTES or more. Any token not starting with "-" counts, option values
 * included: an existing large file named as an output only costs that run its code cache.
 */
export function longRun(argv: readonly string[]): boolean {
  return argv.some((a) => {
    if (a.startsWith("-")) return false;
    if (a.includes("://")) return true;
    const st = statSync(a, { throwIfNoEntry: false });
    return st?.isFile() === true && st.size >= LONG_RUN_BYTES;
  });
}
