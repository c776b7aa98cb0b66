/**
 * Rotation campaigns: move every `kek` stanza of this keystore's keys to its key's primary
 * version, over many files, in parallel, resumably. Only headers are rewritten (engine
 * rewrapFile: new slot, fsync, old slot zeroed, fsync); payload bytes are never written.
 *
 * Resumption: a journal (JSON lines, appended and fsynced in groups) records each finished file.
 * Its first line records the primary versions the campaign targets; a journal for other targets
 * (a key was rotated since) is discarded, so a skipped file is always current. Crash safety
 * does not depend on the journal: a file rewrapped but not yet journaled is found current by
 * its header on the next run. The journal is deleted when a campaign ends without failures.
 */
import { open, readFile, rm } from "node:fs/promises";
import { inspectFile, rewrapFile, type StanzaEdit } from "../engine/index.js";
import { isTensorSealError } from "../format/errors.js";
import type { ParsedHeader } from "../format/header.js";
import type { Identity, Stanza } from "../format/stanza.js";
import { KEK_STANZA, parseKekStanza } from "./kek.js";
import type { Keystore } from "./keystore.js";

export const DEFAULT_JOURNAL = ".tensorseal-rewrap-journal.jsonl";
export const DEFAULT_CONCURRENCY = 8;

export type FileOutcome = "rewrapped" | "current" | "failed";

export interface CampaignOptions {
  readonly files: readonly string[];
  readonly journal?: string;
  readonly concurrency?: number;
  /** Identities for files whose kek stanzas need another key to open (x25519, passphrase). */
  readonly identities?: readonly Identity[];
  readonly onProgress?: (done: number, total: number) => void;
}

export interface CampaignResult {
  rewrapped: number;
  current: number;
  failed: number;
  /** Of rewrapped + current, how many were taken from the journal of an interrupted run. */
  resumed: number;
  failures: { file: string; error: string }[];
  /** Header bytes written (two slots per rewrapped file); payload bytes written: always 0. */
  headerBytesWritten: number;
  journalKept: boolean;
}

/** Rewraps kek stanzas of `ks`'s keys that are not under their key's primary version. */
export function toLatestEdit(ks: Keystore): StanzaEdit {
  return (stanzas, fileKey) =>
    Promise.all(
      stanzas.map(async (s) =>
        isStale(ks, s) ? ks.recipient(parseKekStanza(s).name).wrap(fileKey) : s,
      ),
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

export function needsRewrap(ks: Keystore, header: ParsedHeader): boolean {
  return header.stanzas.some((s) => isStale(ks, s));
}

export async function rewrapToLatest(ks: Keystore, opts: CampaignOptions): Promise<CampaignResult> {
  const journalPath = opts.journal ?? DEFAULT_JOURNAL;
  const target = Object.fromEntries(ks.listKeys().map((k) => [k.name, k.primaryVersion]));
  const done = await readJournal(journalPath, target);
  const journal = await Journal.open(journalPath, done.size === 0 ? target : null);
  const result: CampaignResult = {
    rewrapped: 0,
    current: 0,
    failed: 0,
    resumed: 0,
    failures: [],
    headerBytesWritten: 0,
    journalKept: false,
  };
  const identities = [ks.identity({ purpose: "rewrap" }), ...(opts.identities ?? [])];
  const edit = toLatestEdit(ks);
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
        let outcome: "rewrapped" | "current" = "current";
        if (needsRewrap(ks, header)) {
          await rewrapFile(file, { identities, edit });
          result.headerBytesWritten += 2 * header.slotCapacity;
          outcome = "rewrapped";
        }
        await journal.append({ file, result: outcome });
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
  result.failures.sort((a, b) => (a.file < b.file ? -1 : 1));
  return result;
}

async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
}

/** Finished files of an interrupted run for the same target; empty for another target. */
async function readJournal(
  path: string,
  target: Record<string, number>,
): Promise<Map<string, "rewrapped" | "current">> {
  const done = new Map<string, "rewrapped" | "current">();
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
    if (typeof e?.file === "string" && (e.result === "rewrapped" || e.result === "current"))
      done.set(e.file, e.result);
  }
  return done;
}

function parseLine(l: string | undefined): Record<string, unknown> | null {
  try {
    const v = JSON.parse(l ?? "");
    return v && typeof v === "object" ? v : null;
  } catch {
    return null;
  }
}

/** Append-only JSON lines with group commit: lines queued during an fsync share the next. */
class Journal {
  private queue: string[] = [];
  private waiters: { ok: () => void; err: (e: unknown) => void }[] = [];
  private running = false;

  private constructor(private readonly fh: Awaited<ReturnType<typeof open>>) {}

  static async open(path: string, header: Record<string, number> | null): Promise<Journal> {
    const j = new Journal(await open(path, "a", 0o600));
    if (header) await j.append({ journal: "tensorseal-rewrap", version: 1, target: header });
    return j;
  }

  append(entry: object): Promise<void> {
    return new Promise((ok, err) => {
      this.queue.push(`${JSON.stringify(entry)}\n`);
      this.waiters.push({ ok, err });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.queue.length > 0) {
      const data = this.queue.join("");
      const waiters = this.waiters;
      this.queue = [];
      this.waiters = [];
      try {
        await this.fh.write(data);
        await this.fh.datasync();
        for (const w of waiters) w.ok();
      } catch (e) {
        for (const w of waiters) w.err(e);
      }
    }
    this.running = false;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
