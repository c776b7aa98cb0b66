/**
 * `tensorseal seal-dir DIR -o OUT`: seal a model directory with its manifest (flags:
 * commands/seal-dir.ts).
 */
import type { OptionValues } from "commander";
import { sealModelDir } from "../../integrations/model-dir/index.js";
import { loadSigningKey } from "../../integrations/provenance/dsse.js";
import { tierEncrypts } from "../../tiers/policy.js";
import { recipientsFor } from "../keys-context.js";
import { parsePairs, parseSize, printJson } from "../options.js";
import { say } from "../output.js";
import { progressBar } from "../terminal.js";
import { dirLabels, tiersHere } from "../tier-check.js";

export async function sealDir(dir: string, o: OptionValues): Promise<void> {
  const recipients = await recipientsFor(o);
  // Tier, purpose, owner: flags, else the creation rule matching DIR/PATH; checked per file.
  const tiers = tiersHere();
  const tiered = dirLabels(dir, parsePairs(o.label, "--label"), o, recipients);
  const opts = {
    recipients,
    chunkSize: parseSize(o.chunkSize),
    context: parsePairs(o.context, "--context"),
    ...tiered,
    // Files of an unencrypted tier (public) are sealed integrity-only; the manifest, sealed for
    // the recipients, lists them as such (spec/FORMAT.md §2.5).
    encryptsLabels: (labels: Readonly<Record<string, string>>) => tierEncrypts(tiers, labels),
    ...(o.sign && { signWith: loadSigningKey(o.sign) }),
  };
  const bar = progressBar("sealing");
  const result = await sealModelDir(dir, o.output, { ...opts, onProgress: bar.update }).finally(
    () => bar.done(),
  );
  if (o.json) printJson({ output: o.output, ...result });
  else {
    const open = result.files.filter((f) => f.encrypted === false).length;
    say(
      `sealed ${result.files.length} files of ${dir} -> ${o.output} (model ${result.model}${open ? `, ${open} public: integrity only, not encrypted` : ""}${o.sign ? ", signed" : ""})`,
    );
  }
}
