/**
 * `tensorseal rewrap PATHS`: change the recipients of sealed files, or move them to the latest key
 * versions (flags: commands/rewrap.ts).
 */
import type { OptionValues } from "commander";
import { inspectFile, type RewrapRegistry, rewrapFile } from "../../engine/index.js";
import { fail, isTensorSealError } from "../../format/errors.js";
import {
  type CampaignResult,
  DEFAULT_JOURNAL,
  type FoundFiles,
  findSealedFiles,
  rewrapToLatest,
  ServiceToLatest,
  type SkippedFile,
} from "../../keys/index.js";
import { configuredService, identitiesFor, openKeystore, recipientsFor } from "../keys-context.js";
import { printJson } from "../options.js";
import { say } from "../output.js";
import { planRewrap, rewrapPurpose } from "../rewrap-plan.js";
import { progressBar } from "../terminal.js";
import { checkStanzasForTier, tiersHere } from "../tier-check.js";

export async function rewrap(paths: string[], o: OptionValues): Promise<void> {
  if (o.registry || o.key) return registryCampaign(paths, o);
  if (!o.addRecipient && !o.removeRecipient && !o.toLatest) {
    fail("E_USAGE", "nothing to do: pass --add-recipient, --remove-recipient or --to-latest");
  }
  if (paths.length === 0 && !o.manifest)
    fail("E_USAGE", "no file given: pass PATHS or --manifest FILE");
  const found = await findSealedFiles(paths, o.manifest ?? []);
  if (o.toLatest && !o.addRecipient && !o.removeRecipient) return campaign(found, o);
  const add = o.addRecipient ? await recipientsFor({ recipient: o.addRecipient }) : [];
  const keystore = o.toLatest ? await openKeystore() : null;
  const client = await configuredService();
  const service = client && o.toLatest ? new ServiceToLatest(client) : null;
  const registry = await registryFor(o, client);
  const purpose = rewrapPurpose(o);
  const results: {
    file: string;
    ok: boolean;
    changed?: boolean;
    generation?: number;
    cleared?: string | null;
    error?: string;
  }[] = [];
  const { files } = found;
  const unchangedWhy = o.addRecipient
    ? "nothing to change"
    : "nothing to change (no stanza matches what --remove-recipient names: already removed?)";
  const tiers = tiersHere();
  for (const file of files) {
    try {
      const header = await inspectFile(file);
      const identities = await identitiesFor(header, o, purpose);
      const plan = planRewrap({ add, remove: o.removeRecipient ?? [], keystore, service });
      // The new stanza list must meet the file's tier (its authenticated header names it).
      const edit: typeof plan = async (stanzas, fileKey) => {
        const out = await plan(stanzas, fileKey);
        checkStanzasForTier(`rewrapping ${file}`, header.descriptor.labels, out, tiers);
        return out;
      };
      const r = await rewrapFile(file, { identities, edit, ...(registry ? { registry } : {}) });
      results.push({
        file,
        ok: true,
        changed: r.changed,
        generation: r.generation,
        cleared: r.cleared,
      });
    } catch (e) {
      if (!isTensorSealError(e) || (files.length === 1 && found.skipped.length === 0)) throw e;
      results.push({ file, ok: false, error: e.file === file ? e.detail : e.message });
    }
  }
  if (o.json) printJson({ results, skipped: found.skipped });
  else {
    printSkipped(found.skipped);
    for (const r of results) {
      const what = !r.ok ? "FAILED" : r.changed ? "rewrapped" : "unchanged";
      const why = r.error ?? (r.changed ? "" : unchangedWhy);
      say(`${what} ${r.file}${why ? `: ${why}` : ""}`);
    }
    if (files.length === 0) say(`no sealed file found (${found.skipped.length} skipped)`);
  }
  if (results.some((r) => !r.ok)) process.exitCode = 1;
}

/** The key service's registry follows the rewrap's service stanzas unless --no-registry. */
async function registryFor(
  o: OptionValues,
  client: Awaited<ReturnType<typeof configuredService>>,
): Promise<RewrapRegistry | null> {
  if (o.registry === false || !client) return null;
  return (await import("../../keys/service/registry.js")).restanzaRegistrar(client);
}

function printSkipped(skipped: readonly SkippedFile[]): void {
  for (const s of skipped) say(`skipped ${s.file}: ${s.reason}`);
}

async function campaign(found: FoundFiles, o: Record<string, unknown>): Promise<void> {
  const concurrency = Number(o.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    fail("E_USAGE", "--concurrency must be 1..256");
  }
  const ks = await openKeystore();
  const extra = o.identity || o.passphrase || o.passphraseFile ? await identitiesFor(null, o) : [];
  const service = await configuredService();
  const bar = progressBar("rewrapping", { unit: "items" });
  const r: CampaignResult = await rewrapToLatest(ks, {
    files: found.files,
    skipped: found.skipped,
    journal: (o.journal as string | undefined) ?? DEFAULT_JOURNAL,
    concurrency,
    // The keystore and the key service are added by the campaign itself.
    identities: extra.filter((i) => !i.id.startsWith("keystore:") && !i.id.startsWith("service:")),
    service,
    registry: await registryFor(o, service),
    onProgress: bar.update,
  });
  bar.done();
  if (o.json) printJson(r);
  else {
    printSkipped(r.skippedFiles);
    for (const f of r.failures) say(`FAILED ${f.file}: ${f.error}`);
    const n = found.files.length;
    say(
      `${n} file${n === 1 ? "" : "s"}: rewrapped ${r.rewrapped}, already current ${r.current}, failed ${r.failed}${r.resumed ? ` (${r.resumed} from the journal of an interrupted run)` : ""}${r.cleared ? `; ${r.cleared} only had a leftover header slot of an interrupted rewrap cleared` : ""}${r.skipped ? `; skipped ${r.skipped}` : ""}`,
    );
    if (r.journalKept)
      say("the journal is kept: fix the failures and rerun the same command to retry only them");
  }
  if (r.failed > 0) process.exitCode = 1;
}

/** `--to-latest --registry`: the campaign over the key service's registered artifacts. */
async function registryCampaign(paths: string[], o: OptionValues): Promise<void> {
  if (!o.registry) fail("E_USAGE", "--key selects artifacts for --registry: pass --registry too");
  if (!o.toLatest || o.addRecipient || o.removeRecipient)
    fail("E_USAGE", "--registry goes with --to-latest alone (no --add/--remove-recipient)");
  if (paths.length > 0 || o.manifest)
    fail("E_USAGE", "--registry takes its files from the registry: pass no PATHS or --manifest");
  const concurrency = Number(o.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)
    fail("E_USAGE", "--concurrency must be 1..256");
  const client = await configuredService();
  if (!client)
    fail("E_USAGE", "--registry needs the key service: pass --server URL or set TENSORSEAL_SERVER");
  const { rewrapRegistry, DEFAULT_REGISTRY_JOURNAL } = await import(
    "../../keys/campaign-registry.js"
  );
  const extra = o.identity || o.passphrase || o.passphraseFile ? await identitiesFor(null, o) : [];
  // Keys whose service tier requires attestation open only through attested release.
  const attest =
    (o.attest as string | undefined) ?? (process.env.TENSORSEAL_ATTEST_COMMAND || undefined);
  const evidence = attest
    ? (await import("../../keys/service/evidence-command.js")).commandEvidence(attest)
    : undefined;
  const bar = progressBar("rewrapping", { unit: "items" });
  const r = await rewrapRegistry({
    ...(evidence ? { evidence } : {}),
    client: client!,
    journal: (o.journal as string | undefined) ?? DEFAULT_REGISTRY_JOURNAL,
    concurrency,
    ...(o.key ? { key: o.key as string } : {}),
    identities: extra.filter((i) => !i.id.startsWith("service:")),
    onProgress: bar.update,
  });
  bar.done();
  if (o.json) printJson(r);
  else {
    for (const f of r.failures)
      say(`FAILED ${f.artifact} (${f.location ?? "no location"}): ${f.error}`);
    for (const s of r.stillOld)
      say(
        `still on ${s.key} v${s.version} (primary v${s.primaryVersion}): ${s.artifact}${s.location ? ` at ${s.location}` : ""}: ${s.reason}`,
      );
    say(
      `${r.due} registered artifact${r.due === 1 ? "" : "s"} on old versions: rewrapped ${r.rewrapped}${r.resumed ? `, ${r.resumed} registration${r.resumed === 1 ? "" : "s"} moved from the journal of an interrupted run` : ""}, failed ${r.failed}; still on old versions: ${r.stillOld.length}`,
    );
    if (r.journalKept)
      say("the journal is kept: fix the failures and rerun the same command to retry only them");
  }
  if (r.failed > 0) process.exitCode = 1;
}
