/**
 * What `tensorseal inventory` reports: keys (metadata only, never material) with their versions
 * and how many of the files found are on each, and artifacts (sealed files found, entries of the
 * key service's registry, or both when a registry entry names the file as its location).
 */

/** Where a key lives: the local keystore, the key service, a KMS provider, a public-key recipient. */
export type ProviderKind = "keystore" | "service" | "kms" | "x25519" | "mlkem768x25519";

/** One recipient stanza of a file, reduced to the key it names (the stanza's public fields). */
export type Protector =
  | { readonly kind: "kek"; readonly key: string; readonly version: number }
  | {
      readonly kind: "service";
      readonly key: string;
      readonly version: number;
      readonly serverId: string;
    }
  | { readonly kind: "kms"; readonly provider: string; readonly key: string }
  | { readonly kind: "x25519" | "mlkem768x25519"; readonly tag: string }
  | { readonly kind: "passphrase"; readonly logN: number }
  | { readonly kind: "other"; readonly type: string };

export interface KeyVersionEntry {
  /** Null for keys without versions (KMS references, public-key recipients). */
  readonly version: number | null;
  /** The keystore's or the service's lifecycle state; null when only files name the version. */
  readonly state: string | null;
  readonly created: string | null;
  /** Sealed files found that have a stanza for this version. */
  readonly files: number;
}

export interface KeyEntry {
  readonly name: string;
  readonly provider: ProviderKind;
  /** KMS provider name (aws-kms, pkcs11, ...) or the key service's server id; null otherwise. */
  readonly scope: string | null;
  /** True when the keystore or the key service lists the key; false when only files name it. */
  readonly listed: boolean;
  readonly primaryVersion: number | null;
  /** Seconds; the key's own rotation period (keystore keys only), null without one. */
  readonly rotationPeriod: number | null;
  /** When the primary version is due for rotation, from the key's period or the default. */
  readonly rotationDue: string | null;
  readonly rotationDueFrom: "key" | "default" | null;
  readonly rotationOverdue: boolean;
  readonly versions: readonly KeyVersionEntry[];
  /**
   * Governance metadata: a keystore key's `keys set --owner --purpose --tier`; for a service key
   * the tier is its sensitivity level (null when unspecified).
   */
  readonly owner: string | null;
  readonly purpose: string | null;
  readonly tier: string | null;
  /** Sealed files found that have a stanza for this key (any version). */
  readonly files: number;
}

/** An entry of the key service's artifact registry, as `GET /v1/artifacts` lists it. */
export interface RegistryEntry {
  readonly id: string;
  /** "sha256:<hex>" of the plaintext. */
  readonly digest: string;
  readonly key: string;
  readonly version: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly location?: string;
  readonly created: string;
  /** Lineage (a reseal registered by `reseal`): the artifact this one replaced. */
  readonly supersedes?: string;
  /** The newest artifact that replaced this one (its file was resealed), and when. */
  readonly supersededBy?: string;
  readonly superseded?: string;
}

/** The last allowed `datakeys.unwrap` of an artifact's stanza, from the audit. */
export interface Release {
  readonly artifact: string;
  readonly ts: string;
  readonly principal: string | null;
  readonly seq: number;
}

export interface ArtifactEntry {
  /** The sealed file found (absolute path); null for a registry entry not found on disk. */
  readonly file: string | null;
  /** Registry entries for this artifact (one per service stanza registered). */
  readonly registry: readonly RegistryEntry[];
  /** The keys (and versions) that can open it. */
  readonly protectors: readonly Protector[];
  /** Every recipient stanza as `inspect` describes it (files only). */
  readonly recipients: readonly string[];
  readonly contentType: string | null;
  readonly plaintextLength: number | null;
  readonly context: Readonly<Record<string, string>> | null;
  /** The file's public labels, else the registry's. */
  readonly labels: Readonly<Record<string, string>>;
  /** Tier, purpose and owner from the file's authenticated header (spec §2.2.1), else null. */
  readonly tier: string | null;
  readonly purpose: string | null;
  readonly owner: string | null;
  /** "sha256:<hex>" of the file's whole header (prefix, descriptor, both slots). */
  readonly headerDigest: string | null;
  /**
   * False for a public-tier file (integrity only, spec/FORMAT.md §2.5: anyone can read it);
   * null for a registry entry not found on disk.
   */
  readonly encrypted: boolean | null;
  /** With a server whose audit the token may read: the last release; null if never released. */
  readonly lastRelease?: Release | null;
}

export interface SkippedEntry {
  readonly file: string;
  readonly reason: string;
}

export interface Inventory {
  readonly generated: string;
  /** The keystore read ($TENSORSEAL_HOME), how its root is protected, whether its MAC was checked. */
  readonly keystore: {
    readonly path: string;
    readonly root: "passphrase" | "key-file";
    readonly verified: boolean;
  } | null;
  readonly server: string | null;
  readonly keys: readonly KeyEntry[];
  readonly artifacts: readonly ArtifactEntry[];
  /** Files found under PATHS that are not sealed, or whose header cannot be read. */
  readonly skipped: readonly SkippedEntry[];
  /** What could not be listed and why (a refused scope, an unverified keystore). */
  readonly notes: readonly string[];
}
