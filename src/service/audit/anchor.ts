/**
 * External anchoring: every checkpoint this process signs is copied out of the database, so a
 * rollback that deletes the log's tail together with its checkpoints is still detectable
 * (`audit verify --anchor`). Targets: an append-only file (O_APPEND, fsync) and/or an HTTP POST.
 *
 * Anchoring runs after the checkpoint is committed and never delays a request: a failure is
 * reported (error log + metric) and the checkpoint stays in the database; the next checkpoint
 * is anchored as usual. File lines are written in the order the checkpoints were signed.
 */
import { open } from "node:fs/promises";
import { httpsOrLoopback } from "../loopback.js";
import { anchorLine } from "./anchor-line.js";
import type { SignedCheckpoint } from "./chain.js";

export type AnchorTarget = "file" | "url";

export interface AnchorOptions {
  /** Append-only file outside the database (a directory the database admin cannot write). */
  readonly file?: string;
  /** HTTPS URL (or http on a loopback address) that receives each line as a POST body. */
  readonly url?: string;
  /** POST attempts per checkpoint (default 3) and the first back-off (default 1 s, doubling). */
  readonly attempts?: number;
  readonly retryDelayMs?: number;
  readonly timeoutMs?: number;
}

export interface AnchorReport {
  anchored(target: AnchorTarget): void;
  failed(target: AnchorTarget, seq: number, err: unknown): void;
}

/** The URL, if it is https, or http to a loopback host; otherwise an Error saying why not. */
export function checkAnchorUrl(s: string): URL {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new Error(`not a URL: ${JSON.stringify(s)}`);
  }
  if (httpsOrLoopback(u)) return u;
  throw new Error("the anchor URL must be https://, or http:// to a loopback address");
}

export class CheckpointAnchors {
  private fileQueue: Promise<void> = Promise.resolve();
  private readonly pending = new Set<Promise<void>>();
  private readonly url: URL | null;

  constructor(
    private readonly server: string,
    private readonly o: AnchorOptions,
    private readonly report: AnchorReport,
  ) {
    this.url = o.url ? checkAnchorUrl(o.url) : null;
  }

  /** Queues the checkpoints for every target; returns at once. */
  publish(cps: SignedCheckpoint[]): void {
    if (cps.length === 0) return;
    const lines = cps.map((cp) => anchorLine(this.server, cp));
    const last = cps[cps.length - 1]!.seq;
    const file = this.o.file;
    if (file) {
      this.fileQueue = this.fileQueue.then(() =>
        appendLines(file, lines).then(
          () => this.report.anchored("file"),
          (e) => this.report.failed("file", last, e),
        ),
      );
      this.track(this.fileQueue);
    }
    if (this.url) {
      for (const [i, line] of lines.entries()) this.track(this.post(line, cps[i]!.seq));
    }
  }

  /** Resolves once everything queued so far was anchored or given up (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private async post(line: string, seq: number): Promise<void> {
    const attempts = this.o.attempts ?? 3;
    let delay = this.o.retryDelayMs ?? 1000;
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) {
        await new Promise((r) => setTimeout(r, delay).unref());
        delay *= 2;
      }
      try {
        const res = await fetch(this.url!, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: line,
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 5000),
        });
        await res.arrayBuffer().catch(() => {});
        if (res.ok) {
          this.report.anchored("url");
          return;
        }
        last = new Error(`${this.url!.origin} answered ${res.status}`);
      } catch (e) {
        last = e;
      }
    }
    this.report.failed("url", seq, last);
  }
}

/** O_APPEND: each write lands at the end whatever else writes the file; fsync before success. */
async function appendLines(path: string, lines: string[]): Promise<void> {
  const fh = await open(path, "a", 0o644);
  try {
    await fh.write(lines.map((l) => `${l}\n`).join(""));
    await fh.sync();
  } finally {
    await fh.close();
  }
}
