/**
 * The CLI side of sensitivity tiers: which metadata a new file records (flags, the creation
 * rule, the config's default tier) and the check that its recipients meet the tier, run by
 * `seal`, `seal-dir`, `rewrap` and `reseal` before they write (src/tiers/policy.ts).
 */

import { join } from "node:path";
import { fail } from "../format/errors.js";
import {
  type FileMetadata,
  metadataOf,
  RESERVED_LABEL_PREFIX,
  withMetadata,
} from "../format/metadata.js";
import type { Stanza } from "../format/stanza.js";
import {
  kindViolations,
  recipientKind,
  refuseViolations,
  rotationViolation,
  stanzaKind,
  type TierConfig,
  tierPolicy,
} from "../tiers/policy.js";
import { creationRuleFor, projectTiers } from "./project-config.js";

interface MetadataFlags {
  tier?: string;
  purpose?: string;
  owner?: string;
}

/** Labels for a new file: the user's (no reserved keys) plus tier, purpose and owner. */
export function labelsWithMetadata(
  labels: Record<string, string>,
  o: MetadataFlags,
  tiers: TierConfig,
): Record<string, string> {
  for (const k of Object.keys(labels))
    if (k.startsWith(RESERVED_LABEL_PREFIX))
      fail(
        "E_USAGE",
        `--label ${k}: labels starting with ${RESERVED_LABEL_PREFIX} are reserved (use --tier, --purpose, --owner)`,
      );
  const tier = o.tier ?? tiers.defaultTier ?? undefined;
  const meta: FileMetadata = {
    ...(tier !== undefined ? { tier } : {}),
    ...(o.purpose !== undefined ? { purpose: o.purpose } : {}),
    ...(o.owner !== undefined ? { owner: o.owner } : {}),
  };
  const out = withMetadata(labels, meta); // values checked first
  if (tier !== undefined) tierPolicy(tiers, tier); // then an unknown tier is refused
  return out;
}

/** The tiers that apply to a path (the nearest .tensorseal.yaml above the current directory). */
export function tiersHere(): TierConfig {
  return projectTiers();
}

/** What the rotation check needs: the local keystore's view of a key, and its clock. */
export interface KeyLookup {
  key(name: string): Promise<{ name: string; version: number; created: string } | null>;
  readonly now: Date;
}

/**
 * Refuses (E_USAGE) when recipients named as the CLI names them (`tseal1...`, `kek:NAME`,
 * `passphrase`...) break the tier recorded in `labels`. Files without a tier pass.
 */
export async function checkRecipientsForTier(
  what: string,
  labels: Readonly<Record<string, string>>,
  recipientIds: readonly string[],
  tiers: TierConfig,
  lookup: KeyLookup | null,
): Promise<void> {
  const name = metadataOf(labels).tier;
  if (name === undefined) return;
  const tier = tierPolicy(tiers, name);
  const violations = kindViolations(tier, recipientIds.map(recipientKind));
  if (tier.rotationPeriod !== null && lookup) {
    for (const id of recipientIds) {
      if (!id.startsWith("kek:")) continue;
      const key = await lookup.key(id.slice(4));
      const why = key ? rotationViolation(tier, key, lookup.now) : null;
      if (why) violations.push(why);
    }
  }
  refuseViolations(what, violations);
}

/** The same check on a stanza list (what rewrap and reseal are about to write). */
export function checkStanzasForTier(
  what: string,
  labels: Readonly<Record<string, string>>,
  stanzas: readonly Stanza[],
  tiers: TierConfig,
): void {
  const name = metadataOf(labels).tier;
  if (name === undefined) return;
  refuseViolations(what, kindViolations(tierPolicy(tiers, name), stanzas.map(stanzaKind)));
}

/** The primary version of a local key, for the rotation check. */
export async function keystoreLookup(): Promise<KeyLookup> {
  const { keystoreExists, keystoreOptions, openKeystore } = await import("./keys-context.js");
  const now = keystoreOptions().now?.() ?? new Date();
  if (!keystoreExists()) return { key: async () => null, now };
  return {
    now,
    key: async (name) => {
      const k = (await openKeystore()).showKey(name);
      const v = k.versions.find((x) => x.version === k.primaryVersion);
      return v ? { name, version: v.version, created: v.created } : null;
    },
  };
}

/**
 * seal-dir: the manifest's labels (flags and the default tier) and, per file, the labels of the
 * flags over the creation rule matching DIR/PATH; every file's tier is checked against the
 * recipients before anything is written.
 */
export function dirLabels(
  dir: string,
  userLabels: Record<string, string>,
  o: MetadataFlags,
  recipients: readonly { id: string }[],
): {
  labels: Record<string, string>;
  labelsFor: (paths: readonly string[]) => Promise<Map<string, Record<string, string>>>;
} {
  const tiers = tiersHere();
  const labels = labelsWithMetadata(userLabels, o, tiers);
  const ids = recipients.map((r) => r.id);
  return {
    labels,
    labelsFor: async (paths) => {
      const lookup = await keystoreLookup();
      await checkRecipientsForTier(`sealing ${dir}`, labels, ids, tiers, lookup);
      const out = new Map<string, Record<string, string>>();
      const checked = new Set<string>([JSON.stringify(labels)]);
      for (const path of paths) {
        const rule = creationRuleFor(join(dir, path));
        const meta: MetadataFlags = {
          tier: o.tier ?? rule?.tier,
          purpose: o.purpose ?? rule?.purpose,
          owner: o.owner ?? rule?.owner,
        };
        const own = labelsWithMetadata(userLabels, meta, tiers);
        out.set(path, own);
        const key = JSON.stringify(own);
        if (checked.has(key)) continue;
        checked.add(key);
        await checkRecipientsForTier(`sealing ${join(dir, path)}`, own, ids, tiers, lookup);
      }
      return out;
    },
  };
}
