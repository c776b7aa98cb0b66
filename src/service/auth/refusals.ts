/**
 * Unauthenticated refusals (401) are audited one by one only within a per-source budget: each
 * source address has a token bucket (`burst` refusals at once, refilled at `perMinute`).
 * Beyond it a refusal is still answered 401 and counted, and the counts become one summary
 * entry per source per report interval (`auth.refusals`: how many, since when, why), so a flood
 * of bad requests can neither fill the disk with fsynced rows nor vanish from the record. The
 * metric `tensorseal_auth_refusals_total{audited}` counts both kinds as they happen.
 *
 * Memory is bounded: at most `maxSources` addresses are tracked; beyond, new addresses share
 * one bucket and one summary under the source `*`. Idle full buckets are forgotten on report.
 */
import type { AuditRecord } from "../audit/chain.js";

export interface RefusalLimitOptions {
  /** Refusals of one source audited one by one before the limit applies. */
  readonly burst: number;
  /** Refill rate of each source's budget, in refusals per minute. */
  readonly perMinute: number;
  /** How often the suppressed counts are written as summary entries (ms). */
  readonly reportEveryMs: number;
  /** Addresses tracked at once; more share the bucket `*`. */
  readonly maxSources: number;
}

export const REFUSAL_LIMIT_DEFAULTS: RefusalLimitOptions = {
  burst: 20,
  perMinute: 60,
  reportEveryMs: 60_000,
  maxSources: 10_000,
};

/** Distinct reasons kept per summary; more are counted under "other reasons". */
const MAX_REASONS = 8;
const OTHER = "other reasons";
export const OVERFLOW_SOURCE = "*";

/** What one summary entry records for one source. */
export interface RefusalSummary {
  readonly source: string;
  /** Refusals answered 401 but not audited one by one. */
  readonly suppressed: number;
  /** First and last of them (ISO 8601). */
  readonly since: string;
  readonly until: string;
  /** How many per reason (the same reasons single entries carry; never a token). */
  readonly reasons: Record<string, number>;
}

interface Bucket {
  tokens: number;
  at: number;
  suppressed: number;
  first: number;
  last: number;
  reasons: Map<string, number>;
}

export class RefusalLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly opts: RefusalLimitOptions,
    private readonly now: () => number,
  ) {
    for (const [k, v] of Object.entries(opts))
      if (!Number.isFinite(v) || v <= 0) throw new Error(`refusal limit ${k} must be positive`);
  }

  /** True: audit this refusal on its own; false: it is counted for the source's next summary. */
  admit(source: string, reason: string): boolean {
    const t = this.now();
    const b = this.bucket(source, t);
    b.tokens = Math.min(this.opts.burst, b.tokens + ((t - b.at) * this.opts.perMinute) / 60_000);
    b.at = t;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    if (b.suppressed === 0) b.first = t;
    b.suppressed++;
    b.last = t;
    const key = b.reasons.has(reason) || b.reasons.size < MAX_REASONS ? reason : OTHER;
    b.reasons.set(key, (b.reasons.get(key) ?? 0) + 1);
    return false;
  }

  /** The summaries due (one per source with suppressed refusals); their counts restart at 0. */
  take(): RefusalSummary[] {
    const out: RefusalSummary[] = [];
    const t = this.now();
    for (const [source, b] of this.buckets) {
      if (b.suppressed > 0) {
        out.push({
          source,
          suppressed: b.suppressed,
          since: new Date(b.first).toISOString(),
          until: new Date(b.last).toISOString(),
          reasons: Object.fromEntries(b.reasons),
        });
        b.suppressed = 0;
        b.reasons = new Map();
      } else if (b.tokens + ((t - b.at) * this.opts.perMinute) / 60_000 >= this.opts.burst) {
        this.buckets.delete(source); // idle and refilled: nothing to remember
      }
    }
    return out;
  }

  /** Puts back summaries that could not be written, so the next report still counts them. */
  restore(summaries: readonly RefusalSummary[]): void {
    for (const s of summaries) {
      const b = this.bucket(s.source, this.now());
      const first = Date.parse(s.since);
      b.first = b.suppressed > 0 ? Math.min(b.first, first) : first;
      b.last = Math.max(b.last, Date.parse(s.until));
      b.suppressed += s.suppressed;
      for (const [r, n] of Object.entries(s.reasons)) {
        const key = b.reasons.has(r) || b.reasons.size < MAX_REASONS ? r : OTHER;
        b.reasons.set(key, (b.reasons.get(key) ?? 0) + n);
      }
    }
  }

  private bucket(source: string, t: number): Bucket {
    const key =
      this.buckets.has(source) || this.buckets.size < this.opts.maxSources
        ? source
        : OVERFLOW_SOURCE;
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.opts.burst, at: t, suppressed: 0, first: t, last: t, reasons: new Map() };
      this.buckets.set(key, b);
    }
    return b;
  }
}

/** The audit entry of one summary: principal unknown (never authenticated), source the address. */
export function refusalRecord(s: RefusalSummary, requestId: string): AuditRecord {
  return {
    action: "auth.refusals",
    outcome: "denied",
    status: 401,
    principal: null,
    source: s.source,
    requestId,
    resource: { suppressed: s.suppressed, since: s.since, until: s.until, reasons: s.reasons },
    reason: `${s.suppressed} unauthenticated requests refused beyond this source's audit budget (summarised, not audited one by one)`,
  };
}
