/**
 * Rotation campaigns: move every `kek` stanza of this keystore's keys to its key's primary
 * version, and every `service` stanza of the configured key service to its key's primary (the
 * service re-wraps it: service/latest.ts), over many files, in parallel, resumably. Only headers
 * are rewritten (engine rewrapFile: new slot, fsync, old slot zeroed, fsync); payload bytes are
 * never written. A file whose other header slot still holds a leftover of an interrupted rewrap
 * is work too: the rewrap clears it, even when the stanzas are already current.
 *
 * Resumption: a journal (JSON lines, appended and fsynced in groups) records each finished file.
 * Its first line records the primary versions the campaign targets; a journal for other targets
 * (a key was rotated since) is discarded, so a skipped file is always current. Files with
 * service stanzas are checked again on a resume (the service's primaries are not in the target).
 * Crash safety does not depend on the journal: a file rewrapped but not yet journaled is found
 * current by its header on the next run. The journal is deleted when a campaign ends without
 * failures.
 */
import { readFile, rm } from "node:fs/promises";
import { inspectFile, type RewrapRegistry, rewrapFile, type StanzaEdit } from "../engine/index.js";
import { fail, isTensorSealError } from "../format/errors.js";
import type { ParsedHeader } from "../format/header.js";
import { printable } from "../format/printable.js";
import type { Identity, Stanza } from "../format/stanza.js";
import { DEFAULT_CONCURRENCY, DEFAULT_JOURNAL } from "./campaign-defaults.js";
import { Journal, parseLine, pool } from "./campaign-journal.js";
import type { SkippedFile } from "./campaign-paths.js";
import { KEK_STANZA, parseKekStanza } from "./kek.js";
import type { Keystore } from "./keystore.js";
import { type ServiceClient, serviceIdentity } from "./service/client.js";
import { ServiceToLatest } from "./service/latest.js";
import { parseServiceStanza, SERVICE_STANZA } from "./service/stanza.js";

export { DEFAULT_CONCURRENCY, DEFAULT_JOURNAL };

/**
 * What a campaign did to one file: moved stanzas to the primary (`rewrapped`), only cleared a
 * leftover header slot (`cleared`), nothing (`current`), left it alone because no stanza is
 * this keystore's or this key service's (`skipped`), or could not (`failed`).
 */
export type FileOutcome = "rewrapped" | "cleared" | "current" | "skipped" | "failed";
type Journaled = "rewrapped" | "cleared" | "current";

export interface CampaignOptions {
  readonly files: readonly string[];
  readonly journal?: string;
  readonly concurrency?: number;
  /** Identities for files whose kek stanzas need another key to open (x25519, passphrase). */
  readonly identities?: readonly Identity[];
  /**
   * The key service whose `service` stanzas are moved to their key's primary (it re-wraps
   * them; the token needs the `rewrap` scope, and `unwrap` for files only it opens). Without
   * one, a file with service stanzas fails: nothing could tell whether they are current.
   */
  readonly service?: ServiceClient | null;
  /** Told when a file's service stanzas move, so their registrations follow (engine rewrap). */
  readonly registry?: RewrapRegistry | null;
  /** Files the path expansion found and left alone (findSealedFiles), carried into the result. */
  readonly skipped?: readonly SkippedFile[];
  readonly onProgress?: (done: number, total: number) => void;
}

export interface CampaignResult {
  rewrapped: number;
  /** Files whose stanzas were current but whose leftover header slot had to be cleared. */
  cleared: number;
  current: number;
  /** Files found and left alone; `skippedFiles` says which and why. */
  skipped: number;
  failed: number;
  /** Of rewrapped + cleared + current, how many were taken from the journal of an interrupted run. */
  resumed: number;
  failures: { file: string; error: string }[];
  skippedFiles: SkippedFile[];
  /** Header bytes written (two slots per rewrapped file, one per cleared slot); payload: 0. */
  headerBytesWritten: number;
  journalKept: boolean;
}

/**
 * Rewraps kek stanzas of `ks`'s keys that are not under their key's primary version, and (with
 * `service`) service stanzas of that service that are not under their key's primary.
 */
export function toLatestEdit(ks: Keystore, service?: ServiceToLatest | null): StanzaEdit {
  return (stanzas, fileKey) => {
    if (!service) refuseUncheckedServiceStanzas(stanzas);
    return Promise.all(
      stanzas.map(async (s) => {
        if (isStale(ks, s)) return ks.recipient(parseKekStanza(s).name).wrap(fileKey);
        return (await service?.latest(s)) ?? s;
      }),
    );
  };
}

/** Without a key service, nothing can tell whether service stanzas are current: fail. */
function refuseUncheckedServiceStanzas(stanzas: readonly Stanza[]): void {
  const names = stanzas
    .filter((s) => s.type === SERVICE_STANZA)
    .map((s) => {
      const p = parseServiceStanza(s);
      return printable(`${p.name} v${p.version} of ${p.serverId}`);
    });
  if (names.length === 0) return;
  fail(
    "E_USAGE",
    `its service stanzas (${names.join(", ")}) cannot be checked: no key service is configured (pass --server URL or set TENSORSEAL_SERVER)`,
  );
}

/** True for a kek stanza of one of `ks`'s keys under a version other than the primary. */
export function isStale(ks: Keystore, s: Stanza): boolean {
  if (s.type !== KEK_STANZA) return false;
  const { name, version } = parseKekStanza(s);
  // Keys of other keystores are left alone: only their owner can rewrap them.
  const key = ks.listKeys().find((k) => k.name === name);
  return key !== undefined && version !== key.primaryVersion;
}

/** True when a header write is due: a stale kek stanza of `ks`, or a leftover header slot. */
export function needsRewrap(ks: Keystore, header: ParsedHeader): boolean {
  return header.inactiveSlot.kind !== "empty" || header.stanzas.some((s) => isStale(ks, s));
}

function isOwnKek(ks: Keystore, s: Stanza): boolean {
  if (s.type !== KEK_STANZA) return false;
  const { name } = parseKekStanza(s);
  return ks.listKeys().some((k) => k.name === name);
}

export async function rewrapToLatest(ks: Keystore, opts: CampaignOptions): Promise<CampaignResult> {
  const journalPath = opts.journal ?? DEFAULT_JOURNAL;
  const target = Object.fromEntries(ks.listKeys().map((k) => [k.name, k.primaryVersion]));
  const done = await readJournal(journalPath, target);
  const journal = await Journal.open(
    journalPath,
    done.size === 0 ? { journal: "tensorseal-rewrap", version: 1, target } : null,
  );
  const skippedFiles = [...(opts.skipped ?? [])];
  const result: CampaignResult = {
    rewrapped: 0,
    cleared: 0,
    current: 0,
    skipped: 0,
    failed: 0,
    resumed: 0,
    failures: [],
    skippedFiles,
    headerBytesWritten: 0,
    journalKept: false,
  };
  const service = opts.service ? new ServiceToLatest(opts.service) : null;
  const identities = [
    ks.identity({ purpose: "rewrap" }),
    ...(opts.identities ?? []),
    ...(opts.service ? [serviceIdentity(opts.service)] : []),
  ];
  const edit = toLatestEdit(ks, service);
  let finished = 0;
  const total = opts.files.length;
  const one = async (file: string) => {
    const prior = done.get(file);
    if (prior) {
      result[prior]++;
      result.resumed++;
    } else {
      try {
        const header = await inspectFile(file);
        const plan = await planFile(ks, service, header);
        let outcome: FileOutcome = "current";
        if (plan.skip) {
          outcome = "skipped";
          skippedFiles.push({ file, reason: plan.skip });
        } else if (plan.work) {
          const registry = opts.registry ?? undefined;
          const r = await rewrapFile(file, { identities, edit, registry }).catch((e) => {
            if (plan.ours || !isTensorSealError(e, "E_NO_IDENTITY")) throw e;
            return fail(
              "E_NO_IDENTITY",
              `a header slot left by an interrupted rewrap must be cleared, and no key given opens the file to do it safely (pass -i IDENTITY_FILE or --passphrase): ${e.message}`,
            );
          });
          if (r.cleared) result.headerBytesWritten += header.slotCapacity;
          if (r.changed) result.headerBytesWritten += 2 * header.slotCapacity;
          outcome = r.changed ? "rewrapped" : r.cleared ? "cleared" : "current";
        }
        if (outcome !== "skipped")
          await journal.append({ file, result: outcome, ...(plan.service && { service: true }) });
        result[outcome]++;
      } catch (e) {
        if (!isTensorSealError(e)) throw e;
        result.failed++;
        // Each failure is listed with its file: the message without it.
        result.failures.push({ file, error: e.file === file ? e.detail : e.message });
      }
    }
    opts.onProgress?.(++finished, total);
  };
  try {
    await pool(opts.files, opts.concurrency ?? DEFAULT_CONCURRENCY, one);
  } finally {
    await journal.close();
  }
  if (result.failed === 0) await rm(journalPath, { force: true });
  else result.journalKept = true;
  result.skipped = skippedFiles.length;
  const byFile = (a: { file: string }, b: { file: string }) => (a.file < b.file ? -1 : 1);
  result.failures.sort(byFile);
  skippedFiles.sort(byFile);
  return result;
}

interface FilePlan {
  /** A header write is due. */
  readonly work: boolean;
  /** Why the file is left alone, or null. */
  readonly skip: string | null;
  /** It has stanzas of the key service (checked again on a resume). */
  readonly service: boolean;
  /** It has stanzas of this keystore's keys or of the key service. */
  readonly ours: boolean;
}

/** Decides from the header (and the key service, for its stanzas) what a file needs. */
async function planFile(
  ks: Keystore,
  service: ServiceToLatest | null,
  header: ParsedHeader,
): Promise<FilePlan> {
  const leftover = header.inactiveSlot.kind !== "empty";
  const services = header.stanzas.filter((s) => s.type === SERVICE_STANZA);
  if (!service) refuseUncheckedServiceStanzas(services);
  let ours = header.stanzas.some((s) => isOwnKek(ks, s));
  let work = leftover || header.stanzas.some((s) => isStale(ks, s));
  for (const s of services) {
    if (!(await service!.isOurs(s))) continue;
    ours = true;
    if (!work && (await service!.latest(s)) !== null) work = true;
  }
  if (!ours && !leftover) {
    const types = [...new Set(header.stanzas.map((s) => s.type))].join(", ");
    return {
      work: false,
      skip: `no stanza of this keystore's keys${service ? " or of the key service" : ""} (stanzas: ${types})`,
      service: services.length > 0,
      ours,
    };
  }
  return { work, skip: null, service: services.length > 0, ours };
}

/** Finished files of an interrupted run for the same target; empty for another target. */
async function readJournal(
  path: string,
  target: Record<string, number>,
): Promise<Map<string, Journaled>> {
  const done = new Map<string, Journaled>();
  const text = await readFile(path, "utf8").catch(() => null);
  if (text === null) return done;
  const lines = text.split("\n").filter((l) => l.length > 0);
  const head = parseLine(lines[0]);
  if (JSON.stringify(head?.target) !== JSON.stringify(target)) {
    await rm(path, { force: true }); // a campaign for other key versions: start over
    return done;
  }
  for (const l of lines.slice(1)) {
    const e = parseLine(l); // a torn last line (crash mid-append) does not parse: redo that file
    // Files with service stanzas are checked again: the service's primaries may have moved.
    if (typeof e?.file !== "string" || e.service === true) continue;
    if (e.result === "rewrapped" || e.result === "cleared" || e.result === "current")
      done.set(e.file, e.result);
  }
  return done;
}
