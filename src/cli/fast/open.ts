/** `tensorseal open` alone, bundled to dist/cli/open.cjs (bin.ts, fast-commands.ts). */
import { registerOpen } from "../commands/open.js";
import { newProgram } from "../program-root.js";
import { runCli } from "../run.js";

runCli(() => newProgram([registerOpen]));
