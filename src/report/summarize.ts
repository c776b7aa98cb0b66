/**
 * The audit entries of the window, reduced to what the report shows: releases counted by key,
 * principal and artifact; denied attempts; each approval request's latest state; rotations.
 * Pure functions over parsed entries, so the database and the API give the same report.
 */
import { RELEASE_ACTIONS } from "../service/artifacts/inventory.js";
import type { ApprovalLine, AuditLine, Count } from "./model.js";

export interface Entry {
  readonly seq: number;
  readonly ts: string;
  readonly action: string;
  readonly outcome: string;
  readonly principal: string | null;
  readonly resource?: Record<string, unknown>;
  readonly reason?: string;
}

/** The routes that hand a file key to a caller: the unwraps, and generate (a new file key). */
const RELEASES = new Set<string>([...RELEASE_ACTIONS, "datakeys.generate"]);
export const MAX_DENIED_SHOWN = 500;

class Counter {
  private readonly m = new Map<string, { count: number; last: string }>();
  add(name: string, ts: string, n = 1): void {
    const c = this.m.get(name) ?? { count: 0, last: ts };
    c.count += n;
    if (ts > c.last) c.last = ts;
    this.m.set(name, c);
  }
  sorted(): Count[] {
    return [...this.m]
      .map(([name, c]) => ({ name, ...c }))
      .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name));
  }
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

/** The key@version and artifact each released item names (a batch names several). */
function releasedItems(e: Entry): { key: string; artifact: string | null }[] {
  const r = e.resource ?? {};
  const one = (x: Record<string, unknown>) => {
    const key = str(x.key);
    return key
      ? [{ key: x.version === undefined ? key : `${key}@${x.version}`, artifact: str(x.artifact) }]
      : [];
  };
  if (Array.isArray(r.items))
    return (r.items as Record<string, unknown>[]).flatMap((x) =>
      x && typeof x === "object" && x.ok !== false ? one(x) : [],
    );
  return one(r);
}

export function summarizeReleases(entries: readonly Entry[]) {
  const byKey = new Counter();
  const byPrincipal = new Counter();
  const byArtifact = new Counter();
  let total = 0;
  for (const e of entries) {
    if (!RELEASES.has(e.action) || e.outcome !== "allowed") continue;
    for (const item of releasedItems(e)) {
      total++;
      byKey.add(item.key, e.ts);
      byPrincipal.add(e.principal ?? "(none)", e.ts);
      if (item.artifact) byArtifact.add(item.artifact, e.ts);
    }
  }
  return {
    total,
    byKey: byKey.sorted(),
    byPrincipal: byPrincipal.sorted(),
    byArtifact: byArtifact.sorted(),
  };
}

function detail(e: Entry): string {
  const r = e.resource ? JSON.stringify(e.resource) : "";
  return e.reason ? `${r}${r ? " " : ""}(${e.reason})` : r;
}

export function summarizeDenied(entries: readonly Entry[]) {
  const denied = entries.filter((e) => e.outcome === "denied");
  const shown: AuditLine[] = denied.slice(-MAX_DENIED_SHOWN).map((e) => ({
    seq: e.seq,
    ts: e.ts,
    action: e.action,
    principal: e.principal,
    detail: detail(e),
  }));
  return { total: denied.length, shown };
}

const SUMMARY_SKIP = new Set([
  "approval",
  "operation",
  "requester",
  "approvers",
  "required",
  "state",
  "outcome",
]);

/** Each approval request seen in the window, at its latest recorded state. */
export function summarizeApprovals(entries: readonly Entry[]): ApprovalLine[] {
  const out = new Map<string, ApprovalLine>();
  for (const e of entries) {
    const r = e.resource ?? {};
    const id = str(r.approval);
    if (!id || !e.action.startsWith("approvals.") || e.outcome !== "allowed") continue;
    const prev = out.get(id);
    const summary = Object.entries(r)
      .filter(([k]) => !SUMMARY_SKIP.has(k))
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    out.set(id, {
      id,
      operation: str(r.operation) ?? prev?.operation ?? "?",
      summary: summary || prev?.summary || "",
      requester: str(r.requester) ?? prev?.requester ?? e.principal ?? "?",
      approvers: Array.isArray(r.approvers) ? (r.approvers as string[]) : (prev?.approvers ?? []),
      state: e.action === "approvals.execute" ? "executed" : (str(r.state) ?? prev?.state ?? "?"),
      requested: prev?.requested ?? e.ts,
      updated: e.ts,
    });
  }
  return [...out.values()].sort((a, b) => a.requested.localeCompare(b.requested));
}

/** key name -> the times it was rotated in the window (`keys.rotate`, allowed). */
export function rotationsByKey(entries: readonly Entry[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const e of entries) {
    if (e.action !== "keys.rotate" || e.outcome !== "allowed") continue;
    const key = str(e.resource?.key);
    if (key) m.set(key, [...(m.get(key) ?? []), e.ts]);
  }
  return m;
}
