/** A lone `tensorseal --version`, bundled to dist/cli/version.cjs: no command registered. */
import { newProgram } from "../program-root.js";
import { runCli } from "../run.js";

runCli(() => newProgram([]));
