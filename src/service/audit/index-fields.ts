/**
 * What the audit index holds for an entry, derived from its canonical text: the time, action,
 * outcome and principal (columns of `audit`), and every key and artifact the entry names
 * (rows of `audit_refs`), so `audit query` can filter by them with an index instead of reading
 * the whole chain. The index is a convenience derived from the entries: the chain (its hashes
 * and signed checkpoints) proves what an entry says, never that a filtered page is complete.
 */

export interface IndexColumns {
  ts: string;
  action: string;
  outcome: string;
  principal: string | null;
}

export interface AuditRef {
  seq: number;
  kind: "key" | "artifact";
  ref: string;
}

type Entry = Record<string, unknown>;

const REF_MAX = 128;

export function indexColumns(entry: Entry): IndexColumns {
  return {
    ts: String(entry.ts ?? ""),
    action: String(entry.action ?? ""),
    outcome: String(entry.outcome ?? ""),
    principal: typeof entry.principal === "string" ? entry.principal : null,
  };
}

/**
 * The keys and artifacts an entry's resource names: `key`, `artifact`, `from.key`, `to.key`,
 * the same in each of `items` (batch unwraps), and `artifacts` (the registered artifacts of
 * the stanzas an unwrap or rewrap covered), `keys` (what a refused request was about).
 * Duplicates are dropped.
 */
export function indexRefs(seq: number, entry: Entry): AuditRef[] {
  const keys = new Set<string>();
  const artifacts = new Set<string>();
  const visit = (r: unknown) => {
    if (!r || typeof r !== "object") return;
    const o = r as Record<string, unknown>;
    // Names the API accepts are at most 128 characters; anything else is not indexed.
    if (typeof o.key === "string" && o.key.length <= REF_MAX) keys.add(o.key);
    if (typeof o.artifact === "string" && o.artifact.length <= REF_MAX) artifacts.add(o.artifact);
  };
  const resource = entry.resource as Record<string, unknown> | undefined;
  if (resource && typeof resource === "object") {
    visit(resource);
    visit(resource.from);
    visit(resource.to);
    if (Array.isArray(resource.items)) for (const i of resource.items) visit(i);
    if (Array.isArray(resource.artifacts))
      for (const artifact of resource.artifacts) visit({ artifact });
    if (Array.isArray(resource.keys)) for (const key of resource.keys) visit({ key });
  }
  return [
    ...[...keys].map((ref) => ({ seq, kind: "key" as const, ref })),
    ...[...artifacts].map((ref) => ({ seq, kind: "artifact" as const, ref })),
  ];
}
