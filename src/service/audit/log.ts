/**
 * The audit log the routes write to. `append` resolves only once the entry is committed
 * (durable), so a handler that awaits it before releasing a key fails closed: no audit write,
 * no key release. Concurrent appends are group-committed: while one transaction runs, new
 * entries queue and go into the next one (one lock, one head read, one commit per batch).
 */
import type { AuditRecord } from "./chain.js";

export interface AuditSink {
  append(records: AuditRecord[]): Promise<unknown>;
}

interface Pending {
  record: AuditRecord;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const MAX_GROUP = 512;

export class AuditLog {
  private queue: Pending[] = [];
  private running = false;

  constructor(private readonly sink: AuditSink) {}

  append(record: AuditRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const group = this.queue.splice(0, MAX_GROUP);
        try {
          await this.sink.append(group.map((p) => p.record));
          for (const p of group) p.resolve();
        } catch (e) {
          for (const p of group) p.reject(e);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
