/**
 * What the key service knows: its keys (`GET /v1/keys`, admin), its artifact registry and the
 * last release of each artifact. An admin token reads the registry with its releases in one
 * paged `GET /v1/inventory`; other tokens read `GET /v1/artifacts` (admin or reader) and then
 * one audit query per artifact (`GET /v1/audit?artifact=ID&action=datakeys.unwrap`, audit). A
 * token refused one of them (401/403) leaves that part out with a note; anything else the
 * service answers, and an unreachable service, is an error (the caller asked for the server).
 */
import type { ServiceClient } from "../keys/service/index.js";
import { RELEASE_ACTIONS } from "../service/artifacts/inventory.js";
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
  /** Each artifact's last release when the service gave them with the registry. */
  readonly releases?: Map<string, Release | null>;
  readonly notes: string[];
}

type AuditRow = { seq: number; ts: string; action: string; principal: string | null };
const RELEASES = new Set<string>(RELEASE_ACTIONS);

type InventoryRow = RegistryEntry & {
  lastRelease?: { seq: number; ts: string | null; principal: string | null } | null;
};

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
  // /v1/inventory needs the admin scope, as /v1/keys: only an admin token tries it, so other
  // tokens leave no denial in the audit.
  const inventory = keys ? await readInventoryRoute(c) : null;
  if (inventory) return { serverId, keys, ...inventory, notes };
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

/** The registry with each artifact's last release, or null from a service without the route. */
async function readInventoryRoute(
  c: ServiceClient,
): Promise<{ artifacts: RegistryEntry[]; releases: Map<string, Release | null> } | null> {
  const artifacts: RegistryEntry[] = [];
  const releases = new Map<string, Release | null>();
  let cursor: string | undefined;
  do {
    const q = new URLSearchParams({ limit: "1000" });
    if (cursor !== undefined) q.set("cursor", cursor);
    const r = await c.get(`/v1/inventory?${q}`);
    if (r.status === 404 || refusedStatus(r.status)) return null;
    if (r.status !== 200) c.refused("/v1/inventory", r);
    for (const { lastRelease: last, ...entry } of r.body.artifacts as InventoryRow[]) {
      artifacts.push(entry);
      releases.set(
        entry.id,
        last
          ? { artifact: entry.id, ts: last.ts ?? "", principal: last.principal, seq: last.seq }
          : null,
      );
    }
    cursor = typeof r.body.nextCursor === "string" ? r.body.nextCursor : undefined;
  } while (cursor !== undefined);
  return { artifacts, releases };
}

/**
 * The last allowed release of each artifact id (null: never released), or null with a note when
 * the token may not read the audit. The audit filters one action at a time, so the artifact's
 * allowed entries are read and the releases picked here (the same actions the service's
 * inventory counts); entries come in sequence order, so the last release seen is the latest.
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
      const entries = r.body.entries as AuditRow[];
      const e = entries.filter((x) => RELEASES.has(x.action)).at(-1);
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
