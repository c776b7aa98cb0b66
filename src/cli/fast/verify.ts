/** `tensorseal verify` alone, bundled to dist/cli/verify.cjs (bin.ts, fast-commands.ts). */
import { registerVerify } from "../commands/verify.js";
import { newProgram } from "../program-root.js";
import { runCli } from "../run.js";

runCli(() => newProgram([registerVerify]));
