/**
 * What the key service knows: its keys (`GET /v1/keys`, admin), its artifact registry
 * (`GET /v1/artifacts`, admin or reader) and the last release of each artifact from the audit
 * (`GET /v1/audit?artifact=ID&action=datakeys.unwrap&outcome=allowed`, admin or audit). A token
 * refused one of them (401/403) leaves that part out with a note; anything else the service
 * answers, and an unreachable service, is an error (the caller asked for the server).
 */
import type { ServiceClient } from "../keys/service/index.js";
import type { RegistryEntry, Release } from "./model.js";

export interface ServiceKey {
  readonly name: string;
  readonly created: string;
  readonly primaryVersion: number;
  /** Seconds; null or absent (a service before rotation periods): the default applies. */
  readonly rotationPeriod?: number | null;
  /** The service's sensitivity level (unspecified, public ... restricted). */
  readonly sensitivity?: string;
  readonly versions: readonly {
    readonly version: number;
    readonly created: string;
    readonly state: string;
  }[];
}

export interface ServiceView {
  readonly serverId: string;
  readonly keys: readonly ServiceKey[] | null;
  readonly artifacts: readonly RegistryEntry[] | null;
  readonly notes: string[];
}

const refusedStatus = (s: number) => s === 401 || s === 403;

export async function readService(c: ServiceClient): Promise<ServiceView> {
  const notes: string[] = [];
  const serverId = await c.id();
  let keys: ServiceKey[] | null = null;
  const k = await c.get("/v1/keys");
  if (k.status === 200) keys = k.body.keys as ServiceKey[];
  else if (refusedStatus(k.status))
    notes.push(`service keys not listed: ${why(k)} (GET /v1/keys needs the admin scope)`);
  else c.refused("/v1/keys", k);
  let artifacts: RegistryEntry[] | null = [];
  let cursor: string | undefined;
  do {
    const q = new URLSearchParams({ limit: "1000" });
    if (cursor !== undefined) q.set("cursor", cursor);
    const r = await c.get(`/v1/artifacts?${q}`);
    if (refusedStatus(r.status)) {
      notes.push(
        `service artifacts not listed: ${why(r)} (GET /v1/artifacts needs the admin or reader scope)`,
      );
      artifacts = null;
      break;
    }
    if (r.status !== 200) c.refused("/v1/artifacts", r);
    artifacts.push(...(r.body.artifacts as RegistryEntry[]));
    cursor = typeof r.body.nextCursor === "string" ? r.body.nextCursor : undefined;
  } while (cursor !== undefined);
  return { serverId, keys, artifacts, notes };
}

/**
 * The last allowed unwrap of each artifact id (null: never released), or null with a note when
 * the token may not read the audit. Entries come in sequence order: the last one of the last
 * page is the latest.
 */
export async function lastReleases(
  c: ServiceClient,
  ids: readonly string[],
  notes: string[],
): Promise<Map<string, Release | null> | null> {
  const out = new Map<string, Release | null>();
  for (const id of ids) {
    let since = 0;
    let last: Release | null = null;
    for (;;) {
      const q = new URLSearchParams({
        artifact: id,
        action: "datakeys.unwrap",
        outcome: "allowed",
        limit: "1000",
        since: String(since),
      });
      const r = await c.get(`/v1/audit?${q}`);
      if (refusedStatus(r.status)) {
        notes.push(`last releases not shown: ${why(r)} (GET /v1/audit needs the audit scope)`);
        return null;
      }
      if (r.status !== 200) c.refused("/v1/audit", r);
      const entries = r.body.entries as { seq: number; ts: string; principal: string | null }[];
      const e = entries.at(-1);
      if (e) last = { artifact: id, ts: e.ts, principal: e.principal, seq: e.seq };
      if (r.body.more !== true || entries.length === 0) break;
      since = Number(r.body.nextSince);
    }
    out.set(id, last);
  }
  return out;
}

function why(r: { status: number; body: Record<string, unknown> }): string {
  const msg = typeof r.body.message === "string" ? r.body.message : "";
  return `HTTP ${r.status}${msg ? ` ${msg}` : ""}`;
}
