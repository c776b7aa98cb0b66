/**
 * What campaigns (rotation: campaign.ts, reseal: reseal-campaign.ts) share: an append-only JSON
 * lines journal with group commit, its tolerant reader, and a bounded pool over the files.
 */
import { open } from "node:fs/promises";

/** At most `n` calls of `fn` at once, over `items` in order. */
export async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
}

/** One journal line as an object; null for a torn or foreign line (its file is redone). */
export function parseLine(l: string | undefined): Record<string, unknown> | null {
  try {
    const v = JSON.parse(l ?? "");
    return v && typeof v === "object" ? v : null;
  } catch {
    return null;
  }
}

/** Append-only JSON lines with group commit: lines queued during an fsync share the next. */
export class Journal {
  private queue: string[] = [];
  private waiters: { ok: () => void; err: (e: unknown) => void }[] = [];
  private running = false;

  private constructor(private readonly fh: Awaited<ReturnType<typeof open>>) {}

  /** Opens `path` for appending; `first` (a new journal's header line) is written first. */
  static async open(path: string, first: object | null): Promise<Journal> {
    const j = new Journal(await open(path, "a", 0o600));
    if (first) await j.append(first);
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
