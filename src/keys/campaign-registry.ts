/**
 * `rewrap --to-latest --registry`: a rotation campaign driven by the key service's artifact
 * registry instead of local paths. It reads the registry (GET /v1/inventory, with the keys'
 * primary versions), takes every registered artifact whose version is below its key's
 * primary, and for each one whose location is a file reachable here: has the service re-wrap
 * the registered stanza (POST /v1/datakeys/rewrap; only the header is rewritten, as in the
 * local campaign) and then moves the registration to the new stanza (POST
 * /v1/artifacts/:id/restanza, which checks both stanzas hold the same file key). It ends with a
 * report of the artifacts still on old versions and why.
 *
 * Resumption: the journal (JSON lines, fsynced) records the registered stanza of each artifact
 * *before* its file is rewritten, then `done` after the registration moved. A run interrupted
 * between the two (the file already on the new version, the registry still naming the old
 * stanza, which is gone from the file) finishes the move from the journal's copy of the old
 * stanza. Stanza bytes are ciphertext already stored in the file's header; no key is journaled.
 */
import { readFile, rm, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { inspectFile, rewrapFile, type StanzaEdit } from "../engine/index.js";
import { fail, isTensorSealError } from "../format/errors.js";
import type { Identity, Stanza } from "../format/stanza.js";
import { DEFAULT_CONCURRENCY } from "./campaign-defaults.js";
import { Journal, parseLine, pool } from "./campaign-journal.js";
import type { EvidenceProvider } from "./service/attested.js";
import { type ServiceClient, serviceIdentity } from "./service/client.js";
import { ServiceToLatest } from "./service/latest.js";
import {
  parseServiceStanza,
  SERVICE_STANZA,
  stanzaToWire,
  type WireStanza,
} from "./service/stanza.js";

export const DEFAULT_REGISTRY_JOURNAL = ".tensorseal-rewrap-registry.journal";

export interface RegistryCampaignOptions {
  readonly client: ServiceClient;
  readonly journal?: string;
  readonly concurrency?: number;
  /** Only artifacts of this key. */
  readonly key?: string;
  /** Identities for files the service alone cannot open (it always can for its own stanzas). */
  readonly identities?: readonly Identity[];
  /**
   * Evidence for attested release (`--attest`): needed for keys whose service tier releases
   * file keys only with attestation (the header rewrite must open the file key).
   */
  readonly evidence?: EvidenceProvider;
  readonly onProgress?: (done: number, total: number) => void;
}

/** A registered artifact still on an old version after the campaign, and why. */
export interface StillOld {
  artifact: string;
  key: string;
  version: number;
  primaryVersion: number;
  location: string | null;
  reason: string;
}

export interface RegistryCampaignResult {
  /** Registered artifacts below their key's primary when the campaign started. */
  due: number;
  /** Files rewritten and their registrations moved. */
  rewrapped: number;
  /** Registrations moved from the journal of an interrupted run (the file was already done). */
  resumed: number;
  failed: number;
  failures: { artifact: string; location: string | null; error: string }[];
  /** After the campaign: every registered artifact still below its key's primary. */
  stillOld: StillOld[];
  journalKept: boolean;
}

interface RegisteredArtifact {
  id: string;
  key: string;
  version: number;
  location?: string;
  /** Resealed: its file is gone, its successor is the artifact to rotate. */
  supersededBy?: string;
}

interface Registry {
  primaries: Map<string, number>;
  artifacts: RegisteredArtifact[];
}

/** Every page of GET /v1/inventory (the token needs keys:list for the primaries). */
async function readRegistry(client: ServiceClient, key?: string): Promise<Registry> {
  const primaries = new Map<string, number>();
  const artifacts: RegisteredArtifact[] = [];
  let cursor: string | undefined;
  do {
    const q = new URLSearchParams({ limit: "1000" });
    if (key) q.set("key", key);
    if (cursor) q.set("cursor", cursor);
    const r = await client.get(`/v1/inventory?${q}`);
    if (r.status !== 200) client.refused("/v1/inventory", r);
    const keys = r.body.keys as { name: string; primaryVersion: number }[] | undefined;
    if (!Array.isArray(keys))
      fail(
        "E_PROVIDER",
        `key service ${client.url}: the inventory lists no keys for this token: the registry campaign needs a token that may list keys (admin) to know their primary versions`,
      );
    for (const k of keys!) primaries.set(k.name, k.primaryVersion);
    artifacts.push(...((r.body.artifacts as RegisteredArtifact[]) ?? []));
    cursor = typeof r.body.nextCursor === "string" ? r.body.nextCursor : undefined;
  } while (cursor);
  return { primaries, artifacts };
}

/** The local path of a registered location: an absolute path or a file:// URL; else null. */
export function localPath(location: string | undefined): string | null {
  if (!location) return null;
  if (location.startsWith("file://")) {
    try {
      return fileURLToPath(location);
    } catch {
      return null;
    }
  }
  return location.startsWith("/") ? location : null;
}

/** Pending moves of an interrupted run: artifact id → its registered stanza before the rewrap. */
async function readJournal(path: string): Promise<Map<string, WireStanza>> {
  const pending = new Map<string, WireStanza>();
  const text = await readFile(path, "utf8").catch(() => null);
  if (text === null) return pending;
  for (const l of text.split("\n")) {
    const e = parseLine(l);
    if (typeof e?.artifact !== "string") continue; // the head line, or a torn last line
    if (e.done === true) pending.delete(e.artifact);
    else if (e.from && typeof e.from === "object") pending.set(e.artifact, e.from as WireStanza);
  }
  return pending;
}

export async function rewrapRegistry(
  opts: RegistryCampaignOptions,
): Promise<RegistryCampaignResult> {
  const client = opts.client;
  const journalPath = opts.journal ?? DEFAULT_REGISTRY_JOURNAL;
  const serverId = await client.id();
  const start = await readRegistry(client, opts.key);
  const due = start.artifacts.filter(
    (a) => !a.supersededBy && a.version < (start.primaries.get(a.key) ?? 0),
  );
  const pending = await readJournal(journalPath);
  const journal = await Journal.open(
    journalPath,
    pending.size === 0 ? { journal: "tensorseal-rewrap-registry", version: 1, serverId } : null,
  );
  const result: RegistryCampaignResult = {
    due: due.length,
    rewrapped: 0,
    resumed: 0,
    failed: 0,
    failures: [],
    stillOld: [],
    journalKept: false,
  };
  const latest = new ServiceToLatest(client);
  // No data-key cache: each open of a file key is the service's to decide and audit.
  const identities = [
    serviceIdentity(client, opts.evidence ? { evidence: opts.evidence } : { cache: null }),
    ...(opts.identities ?? []),
  ];
  /** Why an artifact was left alone (reported with it), by id. */
  const leftAlone = new Map<string, string>();
  const ours = (s: Stanza, key: string) => {
    if (s.type !== SERVICE_STANZA) return false;
    const p = parseServiceStanza(s);
    return p.serverId === serverId && p.name === key;
  };
  const move = async (a: RegisteredArtifact, from: WireStanza, to: Stanza) => {
    const r = await client.post(`/v1/artifacts/${encodeURIComponent(a.id)}/restanza`, {
      from,
      to: stanzaToWire(to),
    });
    if (r.status !== 200) client.refused(`/v1/artifacts/${a.id}/restanza`, r);
    await journal.append({ artifact: a.id, done: true });
  };

  const one = async (a: RegisteredArtifact) => {
    const path = localPath(a.location);
    if (!path) {
      leftAlone.set(
        a.id,
        a.location
          ? "its location is not a local path (rewrap it where it lives, then register it again)"
          : "registered without a location",
      );
      return;
    }
    try {
      if (!(await stat(path).catch(() => null))?.isFile()) {
        leftAlone.set(a.id, `no file at ${path} here`);
        return;
      }
      const header = await inspectFile(path);
      const mine = header.stanzas.filter((s) => ours(s, a.key));
      const registered = mine.find((s) => parseServiceStanza(s).version === a.version);
      const journaled = pending.get(a.id);
      if (!registered) {
        // An interrupted run rewrote the file but did not move the registration: finish it.
        const now = mine.find((s) => parseServiceStanza(s).version > a.version);
        if (journaled && now) {
          await move(a, journaled, now);
          result.resumed++;
          return;
        }
        leftAlone.set(
          a.id,
          `the file holds no stanza of ${a.key} v${a.version} (resealed or replaced? register it again)`,
        );
        return;
      }
      const from = stanzaToWire(registered);
      await journal.append({ artifact: a.id, from });
      // Only the registered stanza's key moves; every other stanza stays as it is.
      const edit: StanzaEdit = (stanzas) =>
        Promise.all(
          stanzas.map(async (s) => (ours(s, a.key) ? ((await latest.latest(s)) ?? s) : s)),
        );
      await rewrapFile(path, { identities, edit });
      const after = await inspectFile(path);
      const to = after.stanzas.find(
        (s) => ours(s, a.key) && parseServiceStanza(s).version > a.version,
      );
      if (!to) fail("E_PROVIDER", `the rewrap of ${path} left ${a.key} on v${a.version}`);
      await move(a, from, to!);
      result.rewrapped++;
    } catch (e) {
      if (!isTensorSealError(e)) throw e;
      result.failed++;
      result.failures.push({
        artifact: a.id,
        location: a.location ?? null,
        error: e.file === path ? e.detail : e.message,
      });
    }
  };

  let finished = 0;
  try {
    await pool(due, opts.concurrency ?? DEFAULT_CONCURRENCY, async (a) => {
      await one(a);
      opts.onProgress?.(++finished, due.length);
    });
  } finally {
    await journal.close();
  }
  if (result.failed === 0) await rm(journalPath, { force: true });
  else result.journalKept = true;

  // The report: what the registry says now, each artifact still behind with the reason.
  const end = await readRegistry(client, opts.key);
  const failedWhy = new Map(result.failures.map((f) => [f.artifact, f.error]));
  for (const a of end.artifacts) {
    const primary = end.primaries.get(a.key) ?? 0;
    if (a.version >= primary || a.supersededBy) continue;
    result.stillOld.push({
      artifact: a.id,
      key: a.key,
      version: a.version,
      primaryVersion: primary,
      location: a.location ?? null,
      reason:
        failedWhy.get(a.id) ??
        leftAlone.get(a.id) ??
        "registered or rotated while the campaign ran: run it again",
    });
  }
  result.stillOld.sort((x, y) => (x.artifact < y.artifact ? -1 : 1));
  result.failures.sort((x, y) => (x.artifact < y.artifact ? -1 : 1));
  return result;
}
