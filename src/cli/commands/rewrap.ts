import type { Command } from "commander";
import { inspectFile, rewrapFile } from "../../engine/index.js";
import { fail, isTensorSealError } from "../../format/errors.js";
import { identitiesFor, openKeystore, recipientsFor } from "../keys-context.js";
import { collect, printJson } from "../options.js";
import { planRewrap } from "../rewrap-plan.js";
import { identityOptions } from "./shared.js";

export function registerRewrap(program: Command): void {
  identityOptions(
    program
      .command("rewrap")
      .description(
        "change who can open files by rewriting only their headers (crash-safe, in place)",
      )
      .argument("<files...>", "sealed files")
      .option("-a, --add-recipient <r>", "tseal1... or kek:NAME to add (repeatable)", collect)
      .option(
        "-d, --remove-recipient <r>",
        "tseal1..., kek:NAME or passphrase to remove (repeatable)",
        collect,
      )
      .option("--to-latest", "rewrap kek stanzas under the primary version of their key")
      .option("--json", "print JSON"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal rewrap model.tseal --add-recipient tseal1...\n  tensorseal keys rotate default && tensorseal rewrap *.tseal --to-latest",
    )
    .action(async (files: string[], o) => {
      if (!o.addRecipient && !o.removeRecipient && !o.toLatest) {
        fail("E_USAGE", "nothing to do: pass --add-recipient, --remove-recipient or --to-latest");
      }
      const add = o.addRecipient ? await recipientsFor({ recipient: o.addRecipient }) : [];
      const keystore = o.toLatest ? await openKeystore() : null;
      const results: { file: string; ok: boolean; generation?: number; error?: string }[] = [];
      for (const file of files) {
        try {
          const identities = await identitiesFor(await inspectFile(file), o);
          const edit = planRewrap({ add, remove: o.removeRecipient ?? [], keystore });
          const r = await rewrapFile(file, { identities, edit });
          results.push({ file, ok: true, generation: r.generation });
        } catch (e) {
          if (!isTensorSealError(e) || files.length === 1) throw e;
          results.push({ file, ok: false, error: e.message });
        }
      }
      if (o.json) printJson(results);
      else
        for (const r of results)
          process.stderr.write(
            `tensorseal: ${r.ok ? "rewrapped" : "FAILED"} ${r.file}${r.error ? `: ${r.error}` : ""}\n`,
          );
      if (results.some((r) => !r.ok)) process.exitCode = 1;
    });
}
