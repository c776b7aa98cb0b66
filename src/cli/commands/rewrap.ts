import type { Command } from "commander";
import { inspectFile, rewrapFile } from "../../engine/index.js";
import { fail, isTensorSealError } from "../../format/errors.js";
import {
  type CampaignResult,
  DEFAULT_JOURNAL,
  expandPaths,
  rewrapToLatest,
} from "../../keys/index.js";
import { identitiesFor, openKeystore, recipientsFor } from "../keys-context.js";
import { collect, printJson } from "../options.js";
import { planRewrap } from "../rewrap-plan.js";
import { progressBar } from "../terminal.js";
import { identityOptions } from "./shared.js";

export function registerRewrap(program: Command): void {
  identityOptions(
    program
      .command("rewrap")
      .description(
        "change who can open files by rewriting only their headers (crash-safe, in place)",
      )
      .argument("[paths...]", "sealed files, directories (all *.tseal below) or glob patterns")
      .option("-a, --add-recipient <r>", "tseal1... or kek:NAME to add (repeatable)", collect)
      .option(
        "-d, --remove-recipient <r>",
        "tseal1..., kek:NAME or passphrase to remove (repeatable)",
        collect,
      )
      .option("--to-latest", "rewrap kek stanzas under the primary version of their key")
      .option("--manifest <file>", "also rewrap the paths listed in FILE, one per line", collect)
      .option("--journal <file>", `resume journal for --to-latest (default ${DEFAULT_JOURNAL})`)
      .option("--concurrency <n>", "files rewrapped at once with --to-latest", "8")
      .option("--json", "print JSON"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal rewrap model.tseal --add-recipient tseal1...\n  tensorseal keys rotate default && tensorseal rewrap --to-latest models/ 'ckpt/**/*.tseal'\n\n--to-latest alone runs a campaign: parallel, resumable (rerun the same command after a\ncrash), with a summary `rewrapped N, already current M, failed K`; exit 1 if any failed.",
    )
    .action(async (paths: string[], o) => {
      if (!o.addRecipient && !o.removeRecipient && !o.toLatest) {
        fail("E_USAGE", "nothing to do: pass --add-recipient, --remove-recipient or --to-latest");
      }
      const files = await expandPaths(paths, o.manifest ?? []);
      if (files.length === 0) fail("E_USAGE", "no file given: pass PATHS or --manifest FILE");
      if (o.toLatest && !o.addRecipient && !o.removeRecipient) return campaign(files, o);
      const add = o.addRecipient ? await recipientsFor({ recipient: o.addRecipient }) : [];
      const keystore = o.toLatest ? await openKeystore() : null;
      const results: { file: string; ok: boolean; generation?: number; error?: string }[] = [];
      for (const file of files) {
        try {
          const identities = await identitiesFor(await inspectFile(file), o, "rewrap");
          const edit = planRewrap({ add, remove: o.removeRecipient ?? [], keystore });
          const r = await rewrapFile(file, { identities, edit });
          results.push({ file, ok: true, generation: r.generation });
        } catch (e) {
          if (!isTensorSealError(e) || files.length === 1) throw e;
          results.push({ file, ok: false, error: e.file === file ? e.detail : e.message });
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

async function campaign(files: string[], o: Record<string, unknown>): Promise<void> {
  const concurrency = Number(o.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    fail("E_USAGE", "--concurrency must be 1..256");
  }
  const ks = await openKeystore();
  const extra = o.identity || o.passphrase || o.passphraseFile ? await identitiesFor(null, o) : [];
  const bar = progressBar("rewrapping", { unit: "items" });
  const r: CampaignResult = await rewrapToLatest(ks, {
    files,
    journal: (o.journal as string | undefined) ?? DEFAULT_JOURNAL,
    concurrency,
    identities: extra.filter((i) => !i.id.startsWith("keystore:")),
    onProgress: bar.update,
  });
  bar.done();
  if (o.json) printJson(r);
  else {
    for (const f of r.failures) process.stderr.write(`tensorseal: FAILED ${f.file}: ${f.error}\n`);
    process.stderr.write(
      `tensorseal: rewrapped ${r.rewrapped}, already current ${r.current}, failed ${r.failed}${r.resumed ? ` (${r.resumed} from the journal of an interrupted run)` : ""}\n`,
    );
    if (r.journalKept)
      process.stderr.write(
        "tensorseal: the journal is kept: fix the failures and rerun the same command to retry only them\n",
      );
  }
  if (r.failed > 0) process.exitCode = 1;
}
