/** `tensorseal reseal`: the campaign behind the command (commands/reseal.ts registers it). */
import { readFile } from "node:fs/promises";
import { fail, isTensorSealError } from "../format/errors.js";
import type { ParsedHeader } from "../format/header.js";
import type { Identity, Recipient } from "../format/stanza.js";
import { findSealedFiles, parseIdentityFile, passphraseIdentity } from "../keys/index.js";
import {
  type ResealCampaignResult,
  type ResealedFile,
  resealCampaign,
} from "../keys/reseal-campaign.js";
import { EXIT, exitCodeFor } from "./exit-codes.js";
import { configuredService, filePassphrase, identitiesFor, recipientsFor } from "./keys-context.js";
import { printJson } from "./options.js";
import { say } from "./output.js";
import { sameRecipients } from "./reseal-recipients.js";
import { progressBar } from "./terminal.js";
import { checkRecipientsForTier, keystoreLookup, tiersHere } from "./tier-check.js";

interface ResealFlags {
  manifest?: string[];
  recipient?: string[];
  key?: string[];
  knownRecipient?: string[];
  identity?: string[];
  passphrase?: boolean;
  passphraseFile?: string;
  journal?: string;
  concurrency: string;
  json?: boolean;
  /** False with --no-registry: the key service's registry is not told of the new files. */
  registry?: boolean;
}

export async function runReseal(paths: string[], o: ResealFlags): Promise<void> {
  if (paths.length === 0 && !o.manifest)
    fail("E_USAGE", "no file given: pass PATHS or --manifest FILE");
  const concurrency = Number(o.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    fail("E_USAGE", "--concurrency must be 1..64");
  const found = await findSealedFiles(paths, o.manifest ?? []);
  const passphrase = once(() => filePassphrase({ confirm: false, file: o.passphraseFile }));
  const identities = readIdentities(o, passphrase);
  const explicit = Boolean(o.recipient?.length || o.key?.length);
  let recipients: (header: ParsedHeader) => Promise<readonly Recipient[]>;
  if (explicit) {
    const list = await recipientsFor({ recipient: o.recipient, key: o.key });
    recipients = async () => list;
  } else {
    // The -i identities' public halves keep their x25519 stanzas.
    const fromFiles: Identity[] = [];
    for (const path of o.identity ?? []) {
      if (!/^(aws-kms|pkcs11):/.test(path))
        fromFiles.push(...parseIdentityFile(await readFile(path, "utf8")));
    }
    recipients = sameRecipients({
      known: o.knownRecipient ?? [],
      identities: fromFiles,
      passphrase,
    });
  }
  // A resealed file keeps its descriptor, so its tier: the new recipients must meet it.
  const tiers = tiersHere();
  const lookup = await keystoreLookup();
  const resolve = recipients;
  recipients = async (header) => {
    const list = await resolve(header);
    const ids = list.map((x) => x.id);
    await checkRecipientsForTier("resealing", header.descriptor.labels, ids, tiers, lookup);
    return list;
  };
  // The key service's registry follows its artifacts: each registered one gets its successor
  // before the new file replaces it (a refusal keeps the old file).
  const service = o.registry === false ? null : await configuredService();
  const beforeCommit = service
    ? (await import("../keys/service/registry.js")).successorRegistrar(service)
    : undefined;
  const bar = progressBar("resealing", { unit: "items" });
  const r = await resealCampaign({
    files: found.files,
    skipped: found.skipped,
    concurrency,
    ...(o.journal !== undefined && { journal: o.journal }),
    // A rerun with other recipients is another campaign: its journal does not apply.
    target: explicit
      ? { recipients: [...(o.recipient ?? [])].sort(), keys: [...(o.key ?? [])].sort() }
      : { recipients: "same", known: [...(o.knownRecipient ?? [])].sort() },
    identities,
    recipients,
    onProgress: bar.update,
    ...(beforeCommit ? { beforeCommit } : {}),
  }).finally(() => bar.done());
  if (o.json) printJson(r);
  else report(r);
  process.exitCode = exitCode(r);
}

/** The keys that open a file: as `open` takes them, the passphrase read once for the run. */
function readIdentities(
  o: ResealFlags,
  passphrase: () => Promise<string>,
): (header: ParsedHeader) => Promise<Identity[]> {
  const wantsPassphrase = Boolean(o.passphrase || o.passphraseFile);
  return async (header) => {
    const types = new Set(header.stanzas.map((s) => s.type));
    const onlyPassphrase = types.size === 1 && types.has("passphrase");
    const usePassphrase =
      wantsPassphrase ||
      (onlyPassphrase && !o.identity?.length) ||
      (types.has("passphrase") && Boolean(process.env.TENSORSEAL_PASSPHRASE));
    const extra = usePassphrase ? [passphraseIdentity(await passphrase())] : [];
    if (onlyPassphrase && extra.length > 0) return extra;
    try {
      const rest = await identitiesFor(header, { identity: o.identity });
      return [...extra, ...rest];
    } catch (e) {
      if (extra.length > 0 && isTensorSealError(e, "E_NO_IDENTITY")) return extra;
      throw e;
    }
  };
}

function once<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | null = null;
  return () => {
    p ??= f();
    return p;
  };
}

function report(r: ResealCampaignResult): void {
  for (const s of r.skippedFiles) say(`skipped ${s.file}: ${s.reason}`);
  for (const f of r.files) say(line(f));
  const n = r.files.length;
  say(
    `${n} file${n === 1 ? "" : "s"}: resealed ${r.resealed}, failed ${r.failed}${r.resumed ? ` (${r.resumed} by an interrupted run)` : ""}${r.skipped ? `; skipped ${r.skipped}` : ""}`,
  );
  if (r.journalKept)
    say("the journal is kept: fix the failures and rerun the same command to retry only them");
}

function line(f: ResealedFile): string {
  if (f.outcome === "failed") return `FAILED ${f.file}: ${f.error}`;
  const how = f.resumed ? " (by an interrupted run)" : "";
  const reg = f.registered?.length ? `; registered as ${f.registered.join(", ")}` : "";
  return `resealed ${f.file}${how}: ${f.oldHeaderDigest} -> ${f.newHeaderDigest}${reg}`;
}

/** One file: its own error's code (as `rewrap FILE`); several: 1 if any failed. */
function exitCode(r: ResealCampaignResult): number {
  const failures = r.files.filter((f) => f.outcome === "failed");
  if (failures.length === 0) return EXIT.ok;
  if (r.files.length === 1 && r.skipped === 0) {
    const code = failures[0]!.code;
    return code ? exitCodeFor(code as Parameters<typeof exitCodeFor>[0]) : EXIT.internal;
  }
  return EXIT.internal;
}
