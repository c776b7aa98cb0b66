/** `tensorseal inspect` alone, bundled to dist/cli/inspect.cjs (bin.ts, fast-commands.ts). */
import { registerInspect } from "../commands/inspect.js";
import { newProgram } from "../program-root.js";
import { runCli } from "../run.js";

runCli(() => newProgram([registerInspect]));
