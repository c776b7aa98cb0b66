/**
 * The commands users run most, each shipped as a CommonJS bundle of its own (fast/NAME.ts ->
 * dist/cli/NAME.cjs, scripts/build-cli.mjs) that bin.ts loads instead of the whole CLI: one file,
 * no ES module loader, start-up measured in bench/startup.ts (issue #11). "version" is a lone
 * `--version`. Every other command line runs the whole CLI (main.ts). Imports only argv.ts and
 * node:fs: bin.ts, which every run loads first, holds it.
 */
import { type Stats, statSync } from "node:fs";
import { firstOperand, versionOnly } from "./argv.js";

export const FAST_COMMANDS = ["inspect", "seal", "open", "verify"] as const;

/** The bundle (fast/NAME.ts) that runs `argv`, or null for the whole CLI. */
export function fastBundleFor(argv: readonly string[]): string | null {
  if (versionOnly(argv)) return "version";
  const name = firstOperand(argv);
  return (FAST_COMMANDS as readonly (string | null)[]).includes(name) ? name : null;
}

/**
 * Which of its bundle's code caches suits `argv` (code-cache.ts cacheFile): "recipient" for a
 * seal to a public key (a tseal1... operand, X25519 or post-quantum), "identity" for an open or
 * verify with -i; else the default cache, made by a keystore run. One cache made from both
 * kinds of run made the keystore seal ~2 ms slower (more to deserialize); a wrong guess only
 * costs that run some compiling.
 */
export function cacheVariant(argv: readonly string[]): string | undefined {
  const name = firstOperand(argv);
  if (name === "seal" && argv.some((a) => /^(-r|--recipient=)?tseal1/.test(a))) return "recipient";
  const identity = (a: string) => a.startsWith("-i") || a.startsWith("--identity");
  if ((name === "open" || name === "verify") && argv.some(identity)) return "identity";
  return undefined;
}

/** The commands that may run lean: inspect and --version read a header at most. */
const LEAN_COMMANDS = new Set<string | null>(["seal", "open", "verify"]);

/** From this much input on, a command is a long run (code-cache.ts LEAN_V8_FLAGS). */
export const LONG_RUN_BYTES = 64 << 20;

/**
 * Whether `argv` is a seal, open or verify long enough to take the engine's worker threads or
 * the object-store client, where V8's optimizing compilers cost memory (code-cache.ts
 * LEAN_V8_FLAGS): one of its operands is a URL, or it writes a file (not stdout, a device or a
 * FIFO: those run on one thread and stay well under the memory goal) and one of its operands
 * names a regular file of LONG_RUN_BYTES or more. Any token not starting with "-" counts, option
 * values included: an existing large file named as an output only costs that run its cache.
 */
export function longRun(argv: readonly string[]): boolean {
  if (!LEAN_COMMANDS.has(firstOperand(argv))) return false;
  if (argv.some((a) => !a.startsWith("-") && a.includes("://"))) return true;
  if (streamOutput(argv)) return false;
  return argv.some((a) => {
    if (a.startsWith("-")) return false;
    const st = statOf(a);
    return st?.isFile() === true && st.size >= LONG_RUN_BYTES;
  });
}

/**
 * `path`'s stat, or undefined for anything that cannot be stat'ed: a recipient, a name too long
 * or under a file (ENAMETOOLONG, ENOTDIR), no permission. The command itself reports those.
 */
function statOf(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/** `-o -`, or `-o` naming an existing device or FIFO (the last -o counts, as commander's). */
function streamOutput(argv: readonly string[]): boolean {
  let output: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    if ((a === "-o" || a === "--output") && i + 1 < argv.length) output = argv[++i];
    else if (a.startsWith("--output=")) output = a.slice("--output=".length);
    else if (a.startsWith("-o") && a.length > 2 && !a.startsWith("--")) output = a.slice(2);
  }
  if (output === undefined) return false;
  if (output === "-") return true;
  const st = statOf(output);
  return st !== undefined && (st.isCharacterDevice() || st.isFIFO());
}
