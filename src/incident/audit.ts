/**
 * What the key service's audit says about a scope: the releases of file keys (each entry's
 * hash recomputed by queryApi) and the principals seen at an address.
 */
import type { ServiceClient } from "../keys/service/client.js";
import type { AuditFilter } from "../service/audit/index-store.js";
import { queryApi } from "../service/audit/query.js";
import type { Release, Scope } from "./types.js";

/** Requests that hand a file key to the caller (wrap and generate: the caller chose or got it). */
export const RELEASE_ACTIONS = [
  "datakeys.unwrap",
  "datakeys.unwrap-batch",
  "datakeys.unwrap-attested",
  "datakeys.generate",
  "datakeys.wrap",
] as const;

const WRITES = new Set(["datakeys.generate", "datakeys.wrap"]);

interface EntryFields {
  ts: string;
  action: string;
  outcome: string;
  principal?: string;
  source?: string;
  resource?: {
    key?: string;
    version?: number;
    artifacts?: string[];
    items?: { key?: string; version?: number; ok: boolean }[];
  };
}

/** The audit filter that narrows the entries of a scope (the rest is checked per entry). */
function filterFor(scope: Scope, since?: string): AuditFilter {
  const f: AuditFilter = { outcome: "allowed", ...(since ? { from: since } : {}) };
  if (scope.kind === "key") return { ...f, key: scope.value };
  if (scope.kind === "principal") return { ...f, principal: scope.value };
  if (scope.kind === "artifact") return { ...f, artifact: scope.value };
  return f;
}

/** Every release of a file key in the window that falls in the scope. */
export async function releasesFor(
  client: ServiceClient,
  scope: Scope,
  compromised: readonly number[],
  since?: string,
): Promise<Release[]> {
  const out: Release[] = [];
  for await (const e of queryApi(client, filterFor(scope, since))) {
    const x = JSON.parse(e.text) as EntryFields;
    if (!(RELEASE_ACTIONS as readonly string[]).includes(x.action)) continue;
    // A writer knows the file keys it made: that matters when the writer is the suspect
    // (principal, endpoint), not for a key or an artifact (every seal would count).
    if (WRITES.has(x.action) && (scope.kind === "key" || scope.kind === "artifact")) continue;
    if (scope.kind === "endpoint" && x.source !== scope.value) continue;
    const base = {
      seq: e.seq,
      ts: x.ts,
      action: x.action,
      principal: x.principal ?? "-",
      source: x.source ?? "-",
    };
    const r = x.resource ?? {};
    const pairs = r.items
      ? r.items.filter((i) => i.ok && i.key).map((i) => ({ key: i.key!, version: i.version }))
      : r.key
        ? [{ key: r.key, version: r.version }]
        : [];
    const artifacts = r.artifacts ?? [];
    for (const p of pairs.length ? pairs : [{ key: undefined, version: undefined }]) {
      if (scope.kind === "key" && p.key !== scope.value) continue;
      if (scope.kind === "key" && p.version !== undefined && !compromised.includes(p.version))
        continue;
      const one = (artifact?: string) =>
        out.push({
          ...base,
          ...(p.key !== undefined ? { key: p.key } : {}),
          ...(p.version !== undefined ? { version: p.version } : {}),
          ...(artifact !== undefined ? { artifact } : {}),
        });
      if (artifacts.length === 0) one();
      else for (const a of artifacts) one(a);
    }
  }
  return out;
}
