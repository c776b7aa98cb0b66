/**
 * The commands users run most, each shipped as a CommonJS bundle of its own (fast/NAME.ts ->
 * dist/cli/NAME.cjs, scripts/build-cli.mjs) that bin.ts loads instead of the whole CLI: one file,
 * no ES module loader, start-up measured in bench/startup.ts (issue #11). "version" is a lone
 * `--version`. Every other command line runs the whole CLI (main.ts). Imports only argv.ts: bin.ts,
 * which every run loads first, holds it.
 */
import { firstOperand, versionOnly } from "./argv.js";

export const FAST_COMMANDS = ["inspect", "seal", "open", "verify"] as const;

/** The bundle (fast/NAME.ts) that runs `argv`, or null for the whole CLI. */
export function fastBundleFor(argv: readonly string[]): string | null {
  if (versionOnly(argv)) return "version";
  const name = firstOperand(argv);
  return (FAST_COMMANDS as readonly (string | null)[]).includes(name) ? name : null;
}
