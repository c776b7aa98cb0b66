/**
 * `tensorseal open-dir DIR -o OUT`: open a sealed model directory against its manifest (flags:
 * commands/open-dir.ts).
 */
import type { OptionValues } from "commander";
import { inspectFile } from "../../engine/index.js";
import { manifestPath, openModelDir } from "../../integrations/model-dir/index.js";
import { loadSignerKey } from "../../integrations/provenance/dsse.js";
import { identitiesFor } from "../keys-context.js";
import { printJson } from "../options.js";
import { say } from "../output.js";
import { progressBar } from "../terminal.js";

export async function openDir(dir: string, o: OptionValues): Promise<void> {
  const requireSigner = o.requireSigner ? loadSignerKey(o.requireSigner) : undefined;
  const identities = await identitiesFor(await inspectFile(manifestPath(dir)), o);
  const bar = progressBar("opening");
  const m = await openModelDir(dir, o.output, {
    identities,
    onProgress: bar.update,
    ...(requireSigner && { requireSigner }),
  }).finally(() => bar.done());
  if (o.json) printJson({ output: o.output, model: m.model, files: m.files });
  else say(`opened ${m.files.length} files of ${dir} -> ${o.output}`);
}
