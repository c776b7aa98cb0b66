/**
 * Signed webhooks (anomaly alerts, approval events): POSTs each event as JSON, signed with
 * HMAC-SHA256 over the exact body bytes (`x-tensorseal-signature: sha256=<hex>`), with its id in
 * a header, from a bounded in-memory queue with a per-attempt timeout and exponential backoff.
 * Best effort by design: it never blocks or fails a request; the audit entry is the record.
 * HTTPS, or plain HTTP to a loopback address only.
 */
import { createHmac } from "node:crypto";
import { httpsOrLoopback } from "./loopback.js";

export const SIGNATURE_HEADER = "x-tensorseal-signature";
export const ALERT_ID_HEADER = "x-tensorseal-alert-id";
export const EVENT_ID_HEADER = "x-tensorseal-event-id";

export interface WebhookOptions {
  readonly url: string;
  /** The HMAC key (at least 16 bytes). */
  readonly secret: Uint8Array;
  /** The header that carries each event's id (default x-tensorseal-alert-id). */
  readonly idHeader?: string;
  /** Per attempt (default 5000 ms). */
  readonly timeoutMs?: number;
  /** Events waiting at most; the oldest is dropped beyond (default 1000). */
  readonly maxQueue?: number;
  /** Attempts per event before it is dropped (default 6). */
  readonly maxAttempts?: number;
  /** First retry delay, doubled per attempt up to 5 min (default 1000 ms). */
  readonly backoffMs?: number;
}

export type DeliveryOutcome = "ok" | "retry" | "dropped";

interface Pending {
  readonly id: string;
  readonly body: string;
  attempts: number;
}

export function signBody(secret: Uint8Array, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body, "utf8").digest("hex")}`;
}

/** Throws unless the URL is https:, or http: to a loopback host; `name` words the errors. */
export function checkWebhookUrl(raw: string, name = "alert webhook"): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`${name} ${JSON.stringify(raw)} is not a URL`);
  }
  if (u.username || u.password) throw new Error(`${name} URL must not carry credentials`);
  if (httpsOrLoopback(u)) return u;
  throw new Error(
    `${name} must be https:// (plain http:// only to a loopback address), got ${u.protocol}//${u.hostname}`,
  );
}

export class SignedWebhook {
  private readonly url: URL;
  private readonly queue: Pending[] = [];
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly maxQueue: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;

  constructor(
    private readonly o: WebhookOptions,
    private readonly report: (outcome: DeliveryOutcome, why?: string) => void,
  ) {
    this.url = checkWebhookUrl(o.url);
    if (o.secret.length < 16) throw new Error("a webhook secret must be at least 16 bytes");
    this.timeoutMs = o.timeoutMs ?? 5000;
    this.maxQueue = o.maxQueue ?? 1000;
    this.maxAttempts = o.maxAttempts ?? 6;
    this.backoffMs = o.backoffMs ?? 1000;
  }

  /** Queues an event (returns at once). */
  send(id: string, event: Record<string, unknown>): void {
    if (this.closed) return;
    if (this.queue.length >= this.maxQueue) {
      this.queue.shift();
      this.report("dropped", "queue full");
    }
    this.queue.push({ id, body: JSON.stringify(event), attempts: 0 });
    if (!this.timer) this.kick();
  }

  /** Waits until nothing is queued or in flight (tests; shutdown gives up after `ms`). */
  async drain(ms = 10_000): Promise<boolean> {
    const end = Date.now() + ms;
    while ((this.queue.length > 0 || this.running) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 10));
    return this.queue.length === 0 && !this.running;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private kick(): void {
    this.running ??= this.loop().finally(() => {
      this.running = null;
      // An event queued while the loop was finishing.
      if (this.queue.length > 0 && !this.timer && !this.closed) this.kick();
    });
  }

  /** Delivers in order, one at a time; a failure waits its backoff before the queue moves on. */
  private async loop(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      const p = this.queue[0]!;
      p.attempts++;
      const why = await this.deliver(p);
      if (why === null) {
        this.queue.shift();
        this.report("ok");
        continue;
      }
      if (p.attempts >= this.maxAttempts) {
        this.queue.shift();
        this.report("dropped", why);
        continue;
      }
      this.report("retry", why);
      const delay = Math.min(this.backoffMs * 2 ** (p.attempts - 1), 300_000);
      this.timer = setTimeout(() => {
        this.timer = null;
        this.kick();
      }, delay);
      this.timer.unref();
      return;
    }
  }

  /** null when delivered, else why not. */
  private async deliver(p: Pending): Promise<string | null> {
    try {
      const r = await fetch(this.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          [SIGNATURE_HEADER]: signBody(this.o.secret, p.body),
          [this.o.idHeader ?? ALERT_ID_HEADER]: p.id,
        },
        body: p.body,
        // A redirect could lead to plain HTTP elsewhere: not followed.
        redirect: "error",
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await r.body?.cancel();
      return r.ok ? null : `HTTP ${r.status}`;
    } catch (e) {
      return (e as Error).name === "TimeoutError" ? "timeout" : (e as Error).message;
    }
  }
}
