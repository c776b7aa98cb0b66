/**
 * Reseal campaigns: many sealed files re-encrypted under fresh file keys (engine resealFile), a
 * few at a time, resumably. Each file is replaced atomically, so at every instant it is either
 * the old file or the new one, both valid; the journal only saves work on a rerun.
 *
 * Journal (JSON lines, campaign-journal.ts): a first line naming the recipients the campaign
 * targets (a journal for other recipients is discarded), then per file, just before its new
 * version replaces the old one, `{file, old, new}` (its header digests). On a rerun a file whose
 * header digest is the journaled `new` is done; any other is resealed (again). So a crash after
 * the rename but before the next line costs nothing, and a file changed since is not skipped.
 * The journal is deleted when a campaign ends without failures.
 */
import { open, readFile, rm } from "node:fs/promises";
import { headerDigest, inspectFile, type ResealCommit, resealFile } from "../engine/index.js";
import { isTensorSealError } from "../format/errors.js";
import type { ParsedHeader } from "../format/header.js";
import type { Identity, Recipient } from "../format/stanza.js";
import { Journal, parseLine, pool } from "./campaign-journal.js";
import type { SkippedFile } from "./campaign-paths.js";

export const DEFAULT_RESEAL_JOURNAL = ".tensorseal-reseal-journal.jsonl";
export const DEFAULT_RESEAL_CONCURRENCY = 2;

export interface ResealCampaignOptions {
  readonly files: readonly string[];
  readonly skipped?: readonly SkippedFile[];
  readonly journal?: string;
  readonly concurrency?: number;
  /** What the recipients are (a journal of another campaign is discarded): any JSON value. */
  readonly target: unknown;
  /** The keys that open this file (chosen from its header). */
  readonly identities: (header: ParsedHeader) => Promise<readonly Identity[]>;
  /** The new file's recipients (chosen from its old, authenticated header). */
  readonly recipients: (header: ParsedHeader) => Promise<readonly Recipient[]>;
  /** Worker threads per file (engine default when absent). */
  readonly workers?: number;
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * Called for each file once its new version is complete and before it replaces the old one
   * (before the journal line): a key service's registry registers the successor here. A throw
   * fails the file and leaves the old one in place. What it returns is reported with the file.
   */
  readonly beforeCommit?: (file: string, commit: ResealCommit) => Promise<readonly string[]>;
}

export type ResealOutcome = "resealed" | "failed";

export interface ResealedFile {
  readonly file: string;
  readonly outcome: ResealOutcome;
  /** Header digests ("sha256:..." of the header bytes) before and after; absent when failed. */
  readonly oldHeaderDigest?: string;
  readonly newHeaderDigest?: string;
  /** The new file's recipients (absent for a file done by an interrupted run). */
  readonly recipients?: readonly string[];
  /** True when an interrupted run of this campaign had already resealed it. */
  readonly resumed?: boolean;
  /** What `beforeCommit` reported (the key service artifacts registered as successors). */
  readonly registered?: readonly string[];
  readonly error?: string;
  readonly code?: string;
}

export interface ResealCampaignResult {
  resealed: number;
  failed: number;
  /** Of `resealed`, how many an interrupted run had done. */
  resumed: number;
  /** Found and left alone (not sealed, links, ...): `skippedFiles` says which and why. */
  skipped: number;
  files: ResealedFile[];
  skippedFiles: SkippedFile[];
  journalKept: boolean;
}

export async function resealCampaign(opts: ResealCampaignOptions): Promise<ResealCampaignResult> {
  const journalPath = opts.journal ?? DEFAULT_RESEAL_JOURNAL;
  const head = { journal: "tensorseal-reseal", version: 1, target: opts.target };
  const done = await readJournal(journalPath, head);
  const journal = await Journal.open(journalPath, done.fresh ? head : null);
  const files: ResealedFile[] = [];
  let finished = 0;
  const one = async (file: string) => {
    try {
      const prior = done.entries.get(file);
      if (prior && (await currentDigest(file)) === prior.new) {
        files.push({
          file,
          outcome: "resealed",
          oldHeaderDigest: prior.old,
          newHeaderDigest: prior.new,
          resumed: true,
        });
      } else {
        let registered: readonly string[] | undefined;
        const r = await resealFile(file, {
          identities: await opts.identities(await inspectFile(file)),
          recipients: opts.recipients,
          ...(opts.workers !== undefined && { workers: opts.workers }),
          beforeCommit: async (d) => {
            if (opts.beforeCommit) registered = await opts.beforeCommit(file, d);
            await journal.append({ file, old: d.old, new: d.new });
          },
        });
        files.push({
          file,
          outcome: "resealed",
          oldHeaderDigest: r.oldHeaderDigest,
          newHeaderDigest: r.newHeaderDigest,
          recipients: r.recipients,
          ...(registered && registered.length > 0 ? { registered } : {}),
        });
      }
    } catch (e) {
      if (!isTensorSealError(e)) throw e;
      // Each failure is listed with its file: the message without it.
      files.push({
        file,
        outcome: "failed",
        code: e.code,
        error: e.file === file ? e.detail : e.message,
      });
    }
    opts.onProgress?.(++finished, opts.files.length);
  };
  try {
    await pool(opts.files, opts.concurrency ?? DEFAULT_RESEAL_CONCURRENCY, one);
  } finally {
    await journal.close();
  }
  const failed = files.filter((f) => f.outcome === "failed").length;
  if (failed === 0) await rm(journalPath, { force: true });
  files.sort((a, b) => (a.file < b.file ? -1 : 1));
  const skippedFiles = [...(opts.skipped ?? [])];
  return {
    resealed: files.length - failed,
    failed,
    resumed: files.filter((f) => f.resumed).length,
    skipped: skippedFiles.length,
    files,
    skippedFiles,
    journalKept: failed > 0,
  };
}

/** The digest of the file's header as it is now; null when it is not a readable sealed file. */
async function currentDigest(file: string): Promise<string | null> {
  try {
    const h = await inspectFile(file);
    const fh = await open(file, "r");
    try {
      const buf = Buffer.alloc(h.headerLength);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return bytesRead === buf.length ? headerDigest(buf) : null;
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
}

interface JournalState {
  /** True when there was no journal for this campaign (its first line must be written). */
  readonly fresh: boolean;
  readonly entries: Map<string, { old: string; new: string }>;
}

/** The files an interrupted run of the same campaign replaced; none for another campaign. */
async function readJournal(path: string, head: object): Promise<JournalState> {
  const entries = new Map<string, { old: string; new: string }>();
  const text = await readFile(path, "utf8").catch(() => null);
  if (text === null) return { fresh: true, entries };
  const lines = text.split("\n").filter((l) => l.length > 0);
  if (JSON.stringify(parseLine(lines[0])) !== JSON.stringify(head)) {
    await rm(path, { force: true }); // another campaign's journal: start over
    return { fresh: true, entries };
  }
  for (const l of lines.slice(1)) {
    const e = parseLine(l); // a torn last line (crash mid-append) does not parse: redo that file
    if (typeof e?.file === "string" && typeof e.old === "string" && typeof e.new === "string")
      entries.set(e.file, { old: e.old, new: e.new });
  }
  return { fresh: false, entries };
}
