/**
 * Puts the inventory together: keys from the keystore and the key service (and those only files
 * name), each version's file count, the rotation due date (doctor's rule, check-rotation.ts),
 * and the artifacts: each sealed file found, joined with the registry entries whose location is
 * that file and whose key version is one of its service stanzas (`seal --register` records the
 * absolute path), then the registry entries not found on disk.
 */

import { rotationDue } from "../doctor/check-rotation.js";
import { metadataOf, metadataProblem } from "../format/metadata.js";
import { SUITE_PUBLIC } from "../format/public.js";
import type { KeyInfo } from "../keys/index.js";
import type { SealedFileFound } from "./files.js";
import type {
  ArtifactEntry,
  KeyEntry,
  KeyVersionEntry,
  Protector,
  ProviderKind,
  RegistryEntry,
  Release,
} from "./model.js";
import type { ServiceKey } from "./service.js";

export interface BuildInput {
  readonly now: Date;
  readonly defaultRotation: number | null;
  readonly keystoreKeys: readonly KeyInfo[];
  readonly serviceKeys: readonly ServiceKey[];
  /** The key service's server id (its stanzas name it); null without a server. */
  readonly serverId: string | null;
  readonly files: readonly SealedFileFound[];
  readonly registry: readonly RegistryEntry[];
}

interface KeyAcc {
  name: string;
  provider: ProviderKind;
  scope: string | null;
  listed: boolean;
  primaryVersion: number | null;
  rotationPeriod: number | null;
  due: ReturnType<typeof rotationDue>;
  versions: Map<number | null, { state: string | null; created: string | null; files: number }>;
  files: number;
  meta: { owner: string | null; purpose: string | null; tier: string | null };
}

const NO_META = { owner: null, purpose: null, tier: null };

/** The identity of a key across sources: provider, scope (server id, KMS provider), name. */
export function keyId(
  p: Protector,
): { provider: ProviderKind; scope: string | null; name: string; version: number | null } | null {
  switch (p.kind) {
    case "kek":
      return { provider: "keystore", scope: null, name: p.key, version: p.version };
    case "service":
      return { provider: "service", scope: p.serverId, name: p.key, version: p.version };
    case "kms":
      return { provider: "kms", scope: p.provider, name: p.key, version: null };
    case "x25519":
    case "mlkem768x25519":
      return { provider: p.kind, scope: null, name: p.tag, version: null };
    default:
      return null;
  }
}

const mapKey = (provider: string, scope: string | null, name: string) =>
  `${provider}\0${scope ?? ""}\0${name}`;

export function buildKeys(i: BuildInput): KeyEntry[] {
  const keys = new Map<string, KeyAcc>();
  for (const k of i.keystoreKeys)
    keys.set(mapKey("keystore", null, k.name), {
      name: k.name,
      provider: "keystore",
      scope: null,
      listed: true,
      primaryVersion: k.primaryVersion,
      rotationPeriod: k.rotationPeriod,
      due: rotationDue(k, i.defaultRotation),
      versions: new Map(
        k.versions.map((v) => [v.version, { state: v.state, created: v.created, files: 0 }]),
      ),
      files: 0,
      meta: { owner: k.owner ?? null, purpose: k.purpose ?? null, tier: k.tier ?? null },
    });
  for (const k of i.serviceKeys)
    keys.set(mapKey("service", i.serverId, k.name), {
      name: k.name,
      provider: "service",
      scope: i.serverId,
      listed: true,
      primaryVersion: k.primaryVersion,
      rotationPeriod: k.rotationPeriod ?? null,
      // Its own period (`service keys set --rotation-period`), else the default, as doctor.
      due: rotationDue({ ...k, rotationPeriod: k.rotationPeriod ?? null }, i.defaultRotation),
      versions: new Map(
        k.versions.map((v) => [v.version, { state: v.state, created: v.created, files: 0 }]),
      ),
      files: 0,
      meta: {
        ...NO_META,
        tier: k.sensitivity && k.sensitivity !== "unspecified" ? k.sensitivity : null,
      },
    });
  for (const f of i.files) {
    // A file with two stanzas for one key version counts once for it.
    const seen = new Set<string>();
    for (const p of f.protectors) {
      const id = keyId(p);
      if (!id) continue;
      const mk = mapKey(id.provider, id.scope, id.name);
      let k = keys.get(mk);
      if (!k) {
        k = {
          ...id,
          listed: false,
          primaryVersion: null,
          rotationPeriod: null,
          due: null,
          versions: new Map(),
          files: 0,
          meta: NO_META,
        };
        keys.set(mk, k);
      }
      const v = k.versions.get(id.version) ?? { state: null, created: null, files: 0 };
      k.versions.set(id.version, v);
      const vk = `${mk}\0${id.version}`;
      if (!seen.has(vk)) v.files++;
      if (!seen.has(mk)) k.files++;
      seen.add(vk);
      seen.add(mk);
    }
  }
  return [...keys.values()]
    .map(
      (k): KeyEntry => ({
        name: k.name,
        provider: k.provider,
        scope: k.scope,
        listed: k.listed,
        primaryVersion: k.primaryVersion,
        rotationPeriod: k.rotationPeriod,
        rotationDue: k.due?.due ?? null,
        rotationDueFrom: k.due?.source ?? null,
        rotationOverdue: k.due !== null && Date.parse(k.due.due) <= i.now.getTime(),
        versions: [...k.versions]
          .map(([version, v]): KeyVersionEntry => ({ version, ...v }))
          .sort((a, b) => (a.version ?? 0) - (b.version ?? 0)),
        ...k.meta,
        files: k.files,
      }),
    )
    .sort(
      (a, b) =>
        cmp(a.provider, b.provider) || cmp(a.scope ?? "", b.scope ?? "") || cmp(a.name, b.name),
    );
}

export function buildArtifacts(
  i: BuildInput,
  releases: ReadonlyMap<string, Release | null> | null,
): ArtifactEntry[] {
  const used = new Set<string>();
  const out: ArtifactEntry[] = [];
  for (const f of i.files) {
    // A superseded entry's file was resealed: it stays listed on its own, not joined.
    const mine = i.registry.filter(
      (r) =>
        !r.supersededBy &&
        r.location === f.file &&
        f.protectors.some(
          (p) =>
            p.kind === "service" &&
            p.serverId === i.serverId &&
            p.key === r.key &&
            p.version === r.version,
        ),
    );
    for (const r of mine) used.add(r.id);
    const d = f.header.descriptor;
    out.push({
      file: f.file,
      registry: mine,
      protectors: f.protectors,
      recipients: f.recipients,
      contentType: d.contentType,
      plaintextLength: d.plaintextLength,
      context: d.context,
      labels: d.labels,
      ...metadataFields(d.labels),
      headerDigest: f.headerDigest,
      encrypted: d.suite !== SUITE_PUBLIC,
      ...release(mine, releases),
    });
  }
  for (const r of i.registry) {
    if (used.has(r.id)) continue;
    out.push({
      file: null,
      registry: [r],
      protectors: i.serverId
        ? [{ kind: "service", key: r.key, version: r.version, serverId: i.serverId }]
        : [],
      recipients: [],
      contentType: null,
      plaintextLength: null,
      context: null,
      labels: r.labels,
      ...metadataFields(r.labels),
      headerDigest: null,
      encrypted: null,
      ...release([r], releases),
    });
  }
  return out;
}

/** The latest release over an artifact's registry entries; absent when releases were not read. */
function release(
  entries: readonly RegistryEntry[],
  releases: ReadonlyMap<string, Release | null> | null,
): { lastRelease?: Release | null } {
  if (releases === null || entries.length === 0) return {};
  let last: Release | null = null;
  for (const e of entries) {
    const r = releases.get(e.id) ?? null;
    if (r && (!last || r.seq > last.seq)) last = r;
  }
  return { lastRelease: last };
}

/** Tier, purpose, owner of a labels map (null where absent or, for registry labels, invalid). */
function metadataFields(labels: Readonly<Record<string, string>>) {
  const m = metadataOf(labels);
  const ok = (f: "tier" | "purpose" | "owner") =>
    m[f] !== undefined && metadataProblem(f, m[f]) === null ? m[f] : null;
  return { tier: ok("tier"), purpose: ok("purpose"), owner: ok("owner") };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
