/**
 * Prometheus metrics in the text exposition format (version 0.0.4), hand-rolled: request
 * counts by route, method and status; unwrapped keys by outcome; unwrap latency histogram
 * (handler start to response, audit write included); anomaly alerts, blocks and webhook
 * deliveries; checkpoints signed and anchored; process memory (the soak bench reads it to tell
 * a leak from warm-up).
 */
import type { AuditStats } from "./audit/log.js";

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly unwraps = new Map<string, number>();
  private readonly buckets = new Array<number>(BUCKETS.length).fill(0);
  private count = 0;
  private sum = 0;
  private readonly alerts = new Map<string, number>();
  private readonly webhook = new Map<string, number>();
  private blocks = 0;
  private blockedRequests = 0;
  private readonly refusals = { audited: 0, summarised: 0 };

  /** An unauthenticated refusal, audited on its own or counted for a summary entry. */
  authRefusal(audited: boolean): void {
    this.refusals[audited ? "audited" : "summarised"]++;
  }

  anomalyAlert(kind: string): void {
    this.alerts.set(kind, (this.alerts.get(kind) ?? 0) + 1);
  }

  /** A principal blocked by anomaly auto-block. */
  anomalyBlock(): void {
    this.blocks++;
  }

  /** A request refused because its principal is blocked. */
  blockedRequest(): void {
    this.blockedRequests++;
  }

  webhookDelivery(outcome: "ok" | "retry" | "dropped"): void {
    this.webhook.set(outcome, (this.webhook.get(outcome) ?? 0) + 1);
  }
  private checkpoints = 0;
  private readonly anchors = new Map<string, number>();

  request(route: string, method: string, status: number): void {
    const k = `route=${JSON.stringify(route)},method=${JSON.stringify(method)},status="${status}"`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
  }

  /** `keys` unwrapped (or failed) in one request that took `seconds`. */
  unwrap(outcome: "ok" | "error", keys: number, seconds: number): void {
    this.unwraps.set(outcome, (this.unwraps.get(outcome) ?? 0) + keys);
    this.count++;
    this.sum += seconds;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) this.buckets[i]!++;
  }

  /** Checkpoints this process signed (every N entries or on time). */
  checkpointsSigned(n: number): void {
    this.checkpoints += n;
  }

  /** One anchoring attempt's outcome (after retries), per target. */
  anchor(target: "file" | "url", result: "ok" | "failed"): void {
    const k = `${target}/${result}`;
    this.anchors.set(k, (this.anchors.get(k) ?? 0) + 1);
  }

  render(audit?: AuditStats): string {
    const out: string[] = [
      "# HELP tensorseal_http_requests_total HTTP requests by route, method and status.",
      "# TYPE tensorseal_http_requests_total counter",
    ];
    for (const [k, v] of this.requests) out.push(`tensorseal_http_requests_total{${k}} ${v}`);
    out.push(
      "# HELP tensorseal_unwraps_total File keys unwrapped, by outcome.",
      "# TYPE tensorseal_unwraps_total counter",
    );
    for (const o of ["ok", "error"])
      out.push(`tensorseal_unwraps_total{outcome="${o}"} ${this.unwraps.get(o) ?? 0}`);
    out.push(
      "# HELP tensorseal_unwrap_duration_seconds Unwrap request latency, audit write included.",
      "# TYPE tensorseal_unwrap_duration_seconds histogram",
    );
    for (let i = 0; i < BUCKETS.length; i++) {
      out.push(`tensorseal_unwrap_duration_seconds_bucket{le="${BUCKETS[i]}"} ${this.buckets[i]}`);
    }
    out.push(`tensorseal_unwrap_duration_seconds_bucket{le="+Inf"} ${this.count}`);
    out.push(
      `tensorseal_unwrap_duration_seconds_sum ${this.sum}`,
      `tensorseal_unwrap_duration_seconds_count ${this.count}`,
    );
    out.push(
      "# HELP tensorseal_auth_refusals_total Unauthenticated requests refused (401): audited one by one (true) or within a per-source summary entry (false).",
      "# TYPE tensorseal_auth_refusals_total counter",
      `tensorseal_auth_refusals_total{audited="true"} ${this.refusals.audited}`,
      `tensorseal_auth_refusals_total{audited="false"} ${this.refusals.summarised}`,
    );
    out.push(
      "# HELP tensorseal_anomaly_alerts_total Anomaly alerts raised on this replica, by kind.",
      "# TYPE tensorseal_anomaly_alerts_total counter",
    );
    for (const k of ["rate", "first-seen"])
      out.push(`tensorseal_anomaly_alerts_total{kind="${k}"} ${this.alerts.get(k) ?? 0}`);
    out.push(
      "# HELP tensorseal_anomaly_blocks_total Principals blocked by anomaly auto-block on this replica.",
      "# TYPE tensorseal_anomaly_blocks_total counter",
      `tensorseal_anomaly_blocks_total ${this.blocks}`,
      "# HELP tensorseal_anomaly_blocked_requests_total Requests refused because their principal is blocked.",
      "# TYPE tensorseal_anomaly_blocked_requests_total counter",
      `tensorseal_anomaly_blocked_requests_total ${this.blockedRequests}`,
      "# HELP tensorseal_alert_webhook_deliveries_total Alert webhook attempts, by outcome.",
      "# TYPE tensorseal_alert_webhook_deliveries_total counter",
    );
    for (const o of ["ok", "retry", "dropped"])
      out.push(
        `tensorseal_alert_webhook_deliveries_total{outcome="${o}"} ${this.webhook.get(o) ?? 0}`,
      );
    out.push(
      "# HELP tensorseal_audit_checkpoints_total Audit checkpoints this process signed.",
      "# TYPE tensorseal_audit_checkpoints_total counter",
      `tensorseal_audit_checkpoints_total ${this.checkpoints}`,
    );
    for (const [name, result, help] of [
      ["anchored", "ok", "Checkpoints written to an external anchor."],
      ["anchor_failures", "failed", "Checkpoints an anchor failed to take (after retries)."],
    ] as const) {
      out.push(
        `# HELP tensorseal_audit_${name}_total ${help}`,
        `# TYPE tensorseal_audit_${name}_total counter`,
      );
      for (const t of ["file", "url"])
        out.push(
          `tensorseal_audit_${name}_total{target="${t}"} ${this.anchors.get(`${t}/${result}`) ?? 0}`,
        );
    }
    if (audit) {
      out.push(
        "# HELP tensorseal_audit_commits_total Audit group commits (one transaction each).",
        "# TYPE tensorseal_audit_commits_total counter",
        `tensorseal_audit_commits_total ${audit.commits}`,
        "# HELP tensorseal_audit_entries_total Audit entries committed.",
        "# TYPE tensorseal_audit_entries_total counter",
        `tensorseal_audit_entries_total ${audit.entries}`,
        "# HELP tensorseal_audit_max_group Most entries committed in one group.",
        "# TYPE tensorseal_audit_max_group gauge",
        `tensorseal_audit_max_group ${audit.maxGroup}`,
      );
    }
    const mem = process.memoryUsage();
    out.push(
      "# HELP process_resident_memory_bytes Resident set size of the service process.",
      "# TYPE process_resident_memory_bytes gauge",
      `process_resident_memory_bytes ${mem.rss}`,
      "# HELP nodejs_heap_size_used_bytes V8 heap in use.",
      "# TYPE nodejs_heap_size_used_bytes gauge",
      `nodejs_heap_size_used_bytes ${mem.heapUsed}`,
    );
    return `${out.join("\n")}\n`;
  }
}
