/**
 * `tensorseal seal-dir DIR -o OUT`: seal a model directory with its manifest (flags:
 * commands/seal-dir.ts).
 */
import type { OptionValues } from "commander";
import { sealModelDir } from "../../integrations/model-dir/index.js";
import { loadSigningKey } from "../../integrations/provenance/dsse.js";
import { recipientsFor } from "../keys-context.js";
import { parsePairs, parseSize, printJson } from "../options.js";
import { say } from "../output.js";
import { progressBar } from "../terminal.js";
import { dirLabels } from "../tier-check.js";

export async function sealDir(dir: string, o: OptionValues): Promise<void> {
  const recipients = await recipientsFor(o);
  // Tier, purpose, owner: flags, else the creation rule matching DIR/PATH; checked per file.
  const tiered = dirLabels(dir, parsePairs(o.label, "--label"), o, recipients);
  const opts = {
    recipients,
    chunkSize: parseSize(o.chunkSize),
    context: parsePairs(o.context, "--context"),
    ...tiered,
    ...(o.sign && { signWith: loadSigningKey(o.sign) }),
  };
  const bar = progressBar("sealing");
  const result = await sealModelDir(dir, o.output, { ...opts, onProgress: bar.update }).finally(
    () => bar.done(),
  );
  if (o.json) printJson({ output: o.output, ...result });
  else
    say(
      `sealed ${result.files.length} files of ${dir} -> ${o.output} (model ${result.model}${o.sign ? ", signed" : ""})`,
    );
}
