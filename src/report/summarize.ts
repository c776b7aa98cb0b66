/**
 * The audit entries of the window, reduced to what the report shows: releases counted by key,
 * principal and artifact; denied attempts; each approval request's latest state; rotations.
 * Entries are folded one at a time as they are read (the window may hold millions), so memory
 * grows with the distinct keys, principals, artifacts and approvals, not with the entries; the
 * database and the API feed the same fold, so they give the same report.
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

function detail(e: Entry): string {
  const r = e.resource ? JSON.stringify(e.resource) : "";
  return e.reason ? `${r}${r ? " " : ""}(${e.reason})` : r;
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

/** Folds a window's entries, in order, into the report's audit sections. */
export class AuditSummary {
  private readonly byKey = new Counter();
  private readonly byPrincipal = new Counter();
  private readonly byArtifact = new Counter();
  private released = 0;
  private deniedTotal = 0;
  /** The latest denials, oldest first: trimmed to the last MAX_DENIED_SHOWN in batches. */
  private readonly deniedShown: AuditLine[] = [];
  private readonly approvalLines = new Map<string, ApprovalLine>();
  private readonly rotated = new Map<string, string[]>();

  add(e: Entry): void {
    // An edited entry may lack any field: the chain check reports it, the fold skips it.
    if (typeof e.action !== "string") return;
    if (RELEASES.has(e.action) && e.outcome === "allowed") this.addRelease(e);
    if (e.outcome === "denied") this.addDenied(e);
    if (e.action.startsWith("approvals.") && e.outcome === "allowed") this.addApproval(e);
    if (e.action === "keys.rotate" && e.outcome === "allowed") {
      const key = str(e.resource?.key);
      if (key) this.rotated.set(key, [...(this.rotated.get(key) ?? []), e.ts]);
    }
  }

  private addRelease(e: Entry): void {
    for (const item of releasedItems(e)) {
      this.released++;
      this.byKey.add(item.key, e.ts);
      this.byPrincipal.add(e.principal ?? "(none)", e.ts);
      if (item.artifact) this.byArtifact.add(item.artifact, e.ts);
    }
  }

  private addDenied(e: Entry): void {
    this.deniedTotal++;
    this.deniedShown.push({
      seq: e.seq,
      ts: e.ts,
      action: e.action,
      principal: e.principal,
      detail: detail(e),
    });
    if (this.deniedShown.length >= 2 * MAX_DENIED_SHOWN)
      this.deniedShown.splice(0, MAX_DENIED_SHOWN);
  }

  /** Each approval request seen in the window, at its latest recorded state. */
  private addApproval(e: Entry): void {
    const r = e.resource ?? {};
    const id = str(r.approval);
    if (!id) return;
    const prev = this.approvalLines.get(id);
    const summary = Object.entries(r)
      .filter(([k]) => !SUMMARY_SKIP.has(k))
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    this.approvalLines.set(id, {
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

  releases() {
    return {
      total: this.released,
      byKey: this.byKey.sorted(),
      byPrincipal: this.byPrincipal.sorted(),
      byArtifact: this.byArtifact.sorted(),
    };
  }

  denied() {
    return { total: this.deniedTotal, shown: this.deniedShown.slice(-MAX_DENIED_SHOWN) };
  }

  approvals(): ApprovalLine[] {
    return [...this.approvalLines.values()].sort((a, b) => a.requested.localeCompare(b.requested));
  }

  /** key name -> the times it was rotated in the window (`keys.rotate`, allowed). */
  rotations(): ReadonlyMap<string, readonly string[]> {
    return this.rotated;
  }
}
