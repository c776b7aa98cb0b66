/**
 * The audit log the routes write to. `append` resolves only once the entry is committed
 * (durable), so a handler that awaits it before releasing a key fails closed: no audit write,
 * no key release. Concurrent appends are group-committed: while one transaction runs, new
 * entries queue and go into the next one (one lock, one head read, one commit per batch).
 *
 * A group starts on `setImmediate`, not at the first append: every request whose body was
 * parsed in the same event-loop turn joins it. Starting at once (as slice 1 did) gave groups of
 * one entry under load — Kysely's SQLite driver runs a whole transaction in microtasks, and
 * better-sqlite3's commit (with its fsync) blocks the loop, so no other request could queue in
 * between: one fsync per request.
 */
import type { AuditRecord, SignedCheckpoint } from "./chain.js";

export interface AuditSink {
  append(records: AuditRecord[]): Promise<unknown>;
  /** Time-based checkpoints (AuditStore); a sink without it gets none. */
  checkpointIfDue?(nowMs: number, intervalMs: number): Promise<SignedCheckpoint | null>;
}

interface Pending {
  record: AuditRecord;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const MAX_GROUP = 512;

/** Commit statistics (exported as metrics): groups committed and entries in them. */
export interface AuditStats {
  commits: number;
  entries: number;
  maxGroup: number;
}

export class AuditLog {
  private queue: Pending[] = [];
  /** Work that must not overlap a group commit of this process (time-based checkpoints). */
  private tasks: (() => Promise<void>)[] = [];
  private running = false;
  private scheduled = false;
  readonly stats: AuditStats = { commits: 0, entries: 0, maxGroup: 0 };

  constructor(private readonly sink: AuditSink) {}

  append(record: AuditRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Signs a checkpoint of the head if one is due (see AuditStore.checkpointIfDue), between two
   * group commits: it takes the same lock, so it queues like a group instead of racing one.
   */
  checkpointIfDue(nowMs: number, intervalMs: number): Promise<SignedCheckpoint | null> {
    const sink = this.sink;
    if (!sink.checkpointIfDue) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.tasks.push(() => sink.checkpointIfDue!(nowMs, intervalMs).then(resolve, reject));
      this.schedule();
    });
  }

  private schedule(): void {
    if (!this.running && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        if (!this.running) void this.drain();
      });
    }
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0 || this.tasks.length > 0) {
        for (const task of this.tasks.splice(0)) await task();
        if (this.queue.length === 0) continue;
        const group = this.queue.splice(0, MAX_GROUP);
        try {
          await this.sink.append(group.map((p) => p.record));
          this.stats.commits++;
          this.stats.entries += group.length;
          if (group.length > this.stats.maxGroup) this.stats.maxGroup = group.length;
          for (const p of group) p.resolve();
        } catch (e) {
          for (const p of group) p.reject(e);
        }
        // Let requests that arrived during the commit reach the queue before the next group.
        if (this.queue.length < MAX_GROUP) await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      this.running = false;
    }
  }
}
