/** `tensorseal seal` alone, bundled to dist/cli/seal.cjs (bin.ts, fast-commands.ts). */
import { registerSeal } from "../commands/seal.js";
import { newProgram } from "../program-root.js";
import { runCli } from "../run.js";

runCli(() => newProgram([registerSeal]));
