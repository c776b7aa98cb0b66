/**
 * Where a command line names its command. Shared by program.ts (which registers only that
 * command) and bin.ts (which picks the file to load before anything else is loaded): no imports,
 * so the smallest entry can use it.
 */

/** Global options that take a value: the token after them is not a command name. */
const GLOBAL_WITH_VALUE = new Set(["--server"]);

/** The first operand of `argv` (the command's name, if any), or null; none after `--`. */
export function firstOperand(argv: readonly string[]): string | null {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") return null;
    if (GLOBAL_WITH_VALUE.has(a)) i++;
    else if (!a.startsWith("-")) return a;
  }
  return null;
}

/** `tensorseal --version` alone: commander prints the version before it looks at any command. */
export function versionOnly(argv: readonly string[]): boolean {
  return argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V");
}
