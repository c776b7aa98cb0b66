/**
 * Sensitivity tiers (docs/GOVERNANCE.md §Tiers): what a tier requires of a sealed file's
 * recipients. A tier is recorded in the file's authenticated header (`tensorseal:tier`,
 * spec/FORMAT.md §2.2.1); its requirements are configuration (`.tensorseal.yaml` `tiers:`, with
 * the built-in defaults below), checked by `seal`, `seal-dir`, `rewrap` and `reseal` before they
 * write, and by `tensorseal doctor` for files already written.
 */
import { fail } from "../format/errors.js";
import { TIER_LABEL } from "../format/metadata.js";
import { PUBLIC_STANZA_TYPE } from "../format/public.js";
import type { Stanza } from "../format/stanza.js";

/** What kind of holder a recipient (or the stanza written for it) is. */
export const RECIPIENT_KINDS = [
  "passphrase",
  "x25519",
  "mlkem768x25519",
  "kek",
  "pkcs11",
  "aws-kms",
  "service",
] as const;
export type RecipientKind = (typeof RECIPIENT_KINDS)[number];

export interface TierPolicy {
  readonly name: string;
  /** Recipient kinds a file of this tier may be sealed to; null: any. */
  readonly allow: readonly RecipientKind[] | null;
  /** Seconds: a local key's primary version may not be older (null: no requirement). */
  readonly rotationPeriod: number | null;
  /** Release needs attestation: enforced by the key service (recorded here, see GOVERNANCE). */
  readonly attestation: boolean;
  /**
   * False: files of this tier are sealed integrity-only (suite 2, spec/FORMAT.md §2.5), readable
   * by anyone with no key. Only the tier named `public` may be unencrypted; it is by default.
   */
  readonly encrypt: boolean;
}

export interface TierConfig {
  readonly tiers: ReadonlyMap<string, TierPolicy>;
  /** The tier of files sealed without --tier and without a creation rule naming one. */
  readonly defaultTier: string | null;
  /** Where it came from: the config file, or null for the built-ins. */
  readonly source: string | null;
}

const DAY = 86400;

/**
 * The key service's artifact sensitivity levels (src/service/authz/attributes.ts, which a test
 * keeps equal): a tier with one of these names is registered as that `sensitivity`.
 */
export const SERVICE_LEVELS: readonly string[] = [
  "public",
  "internal",
  "confidential",
  "restricted",
];
const HARDWARE_OR_PQ: readonly RecipientKind[] = ["pkcs11", "aws-kms", "service", "mlkem768x25519"];

/** The built-in tiers; a `.tensorseal.yaml` `tiers:` entry of the same name replaces one. */
export const BUILTIN_TIERS: readonly TierPolicy[] = [
  { name: "public", allow: null, rotationPeriod: null, attestation: false, encrypt: false },
  { name: "internal", allow: null, rotationPeriod: null, attestation: false, encrypt: true },
  {
    name: "confidential",
    allow: ["kek", "pkcs11", "aws-kms", "service", "x25519", "mlkem768x25519"],
    rotationPeriod: 365 * DAY,
    attestation: false,
    encrypt: true,
  },
  {
    name: "restricted",
    allow: HARDWARE_OR_PQ,
    rotationPeriod: 90 * DAY,
    attestation: true,
    encrypt: true,
  },
];

export function builtinTierConfig(): TierConfig {
  return {
    tiers: new Map(BUILTIN_TIERS.map((t) => [t.name, t])),
    defaultTier: null,
    source: null,
  };
}

/** The kind of a recipient as the CLI names it (tseal1..., kek:NAME, passphrase...). */
export function recipientKind(id: string): RecipientKind | string {
  const lower = id.toLowerCase();
  if (id === "passphrase") return "passphrase";
  if (lower.startsWith("tseal1pq1")) return "mlkem768x25519";
  if (lower.startsWith("tseal1")) return "x25519";
  const colon = id.indexOf(":");
  return colon > 0 ? id.slice(0, colon) : id;
}

/** The kind of a stanza: its type, or for `kms` stanzas the provider (pkcs11, aws-kms). */
export function stanzaKind(s: Stanza): RecipientKind | string {
  if (s.type === "kms" && s.fields.length >= 1) return s.fields[0]!.toString("latin1");
  return s.type;
}

/** A tier by name, or a usage error naming the configured ones. */
export function tierPolicy(config: TierConfig, name: string): TierPolicy {
  const t = config.tiers.get(name);
  if (t) return t;
  return fail(
    "E_USAGE",
    `unknown tier ${JSON.stringify(name)} (configured: ${[...config.tiers.keys()].join(", ")}${config.source ? ` in ${config.source}` : " (built in)"})`,
  );
}

/** One sentence per recipient kind the tier does not allow ([] when all are allowed). */
export function kindViolations(tier: TierPolicy, kinds: readonly string[]): string[] {
  if (tier.allow === null) return [];
  const allowed = new Set<string>(tier.allow);
  // The `public` stanza of an integrity-only file publishes its key: it is not a recipient.
  const bad = [...new Set(kinds.filter((k) => !allowed.has(k) && k !== PUBLIC_STANZA_TYPE))];
  return bad.map(
    (k) =>
      `tier ${tier.name} does not allow ${k} recipients (allowed: ${tier.allow!.join(", ")})${k === "x25519" && allowed.has("mlkem768x25519") ? "; use a post-quantum tseal1pq1... recipient (`tensorseal keygen --pq`)" : ""}`,
  );
}

/** A sentence when a local key's primary version is older than the tier allows, else null. */
export function rotationViolation(
  tier: TierPolicy,
  key: { name: string; version: number; created: string },
  now: Date,
): string | null {
  if (tier.rotationPeriod === null) return null;
  const age = (now.getTime() - Date.parse(key.created)) / 1000;
  if (!(age > tier.rotationPeriod)) return null;
  return `tier ${tier.name} requires keys rotated every ${days(tier.rotationPeriod)}: key ${key.name} v${key.version} is ${days(age)} old (run \`tensorseal keys rotate ${key.name}\`)`;
}

function days(seconds: number): string {
  if (seconds >= DAY) return `${Math.floor(seconds / DAY)}d`;
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds)}s`;
}

/** Refuses (E_USAGE, exit 2) with every violation, before anything is written. */
export function refuseViolations(what: string, violations: readonly string[]): void {
  if (violations.length === 0) return;
  fail(
    "E_USAGE",
    `${what} breaks its tier: ${violations.join("; ")} (tiers: .tensorseal.yaml, docs/GOVERNANCE.md)`,
  );
}

/**
 * Whether files recording `labels` are sealed encrypted: true unless their tier is configured
 * unencrypted (the built-in `public` tier, spec/FORMAT.md §2.5). Files without a tier are.
 */
export function tierEncrypts(
  config: TierConfig,
  labels: Readonly<Record<string, string>>,
): boolean {
  const name = labels[TIER_LABEL];
  if (name === undefined) return true;
  return config.tiers.get(name)?.encrypt ?? true;
}

/** Refuses explicit recipients for an unencrypted tier: giving keys means expecting secrecy. */
export function refuseRecipientsForPublic(what: string, tier: string): never {
  return fail(
    "E_USAGE",
    `${what}: tier ${tier} is sealed without encryption (integrity only, readable by anyone), so it takes no recipients: drop -r/-k/--passphrase, or set \`encrypt: true\` for tier ${tier} in .tensorseal.yaml`,
  );
}
