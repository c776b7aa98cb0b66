/**
 * Anomaly detection settings and their defaults (docs/SERVICE.md, "Anomaly detection and
 * alerts"). The defaults aim at "a stolen credential drained in bulk": a principal releasing
 * at least 100 keys in a minute and 10x its usual rate, once 10 minutes of history exist.
 */
import type { WebhookOptions } from "../webhook.js";

export interface AnomalyOptions {
  /** Alert when the current minute's releases exceed factor x baseline (default 10). */
  readonly rateFactor?: number;
  /** ... and at least this many keys in the minute (default 100), so a quiet principal's first burst stays quiet. */
  readonly minRate?: number;
  /** Minutes of history (per principal, per replica) before rate alerts start (default 10). */
  readonly warmupMinutes?: number;
  /** Span of the exponentially weighted baseline in minutes: alpha = 2 / (span + 1) (default 30). */
  readonly baselineMinutes?: number;
  /** Alert on a first-seen source address, certificate or workload (default true). */
  readonly firstSeen?: boolean;
  /** Alert on a principal's very first request, too (default true). */
  readonly firstSeenPrincipal?: boolean;
  /** Block a principal on a rate alert until an admin unblocks it (default false). */
  readonly autoBlock?: boolean;
  /** Where alerts are POSTed besides the audit log. */
  readonly webhook?: WebhookOptions;
}

export interface AnomalySettings {
  readonly rateFactor: number;
  readonly minRate: number;
  readonly warmupMinutes: number;
  readonly alpha: number;
  readonly firstSeen: boolean;
  readonly firstSeenPrincipal: boolean;
  readonly autoBlock: boolean;
}

export const ANOMALY_DEFAULTS = {
  rateFactor: 10,
  minRate: 100,
  warmupMinutes: 10,
  baselineMinutes: 30,
} as const;

/** How long a replica trusts its copy of the blocked set (ms); also the cross-replica delay. */
export const BLOCK_CACHE_MS = 2000;

function check(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isFinite(v) || v < lo || v > hi) throw new Error(`${name} must be ${lo}..${hi}`);
  return v;
}

export function anomalySettings(o: AnomalyOptions): AnomalySettings {
  const d = ANOMALY_DEFAULTS;
  const span = check("anomaly baselineMinutes", o.baselineMinutes ?? d.baselineMinutes, 1, 10080);
  return {
    rateFactor: check("anomaly rateFactor", o.rateFactor ?? d.rateFactor, 1.1, 1e6),
    minRate: check("anomaly minRate", o.minRate ?? d.minRate, 1, 1e9),
    warmupMinutes: check("anomaly warmupMinutes", o.warmupMinutes ?? d.warmupMinutes, 0, 10080),
    alpha: 2 / (span + 1),
    firstSeen: o.firstSeen ?? true,
    firstSeenPrincipal: o.firstSeenPrincipal ?? true,
    autoBlock: o.autoBlock ?? false,
  };
}
