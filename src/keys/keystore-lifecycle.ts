/**
 * The KEK version lifecycle (spec/KEYSTORE.md §Lifecycle), as pure checks and edits on a key's
 * document. Vocabulary from Vault Transit and AWS KMS:
 *
 *   enabled ⇄ disabled;  enabled|disabled → scheduled_for_destruction (destroy_after = now +
 *   waiting period) → destroyed (material erased, by purge once destroy_after has passed);
 *   scheduled_for_destruction → disabled (cancel-destroy, as AWS KMS's CancelKeyDeletion).
 *
 * The primary version is always enabled: rotate before disabling or destroying it. A version
 * decrypts only when enabled and ≥ min_decryption_version. Releasing a file key to a new
 * recipient is a decryption; only moving a file to the latest versions of its own keys (no
 * recipient added) may read an enabled version below the minimum (spec/KEYSTORE.md §Lifecycle).
 */

import { fail } from "../format/errors.js";
import { metadataProblem } from "../format/metadata.js";
import type { KeyDoc, VersionDoc } from "./keystore-doc.js";

export const DAY_SECONDS = 86400;
export const DEFAULT_DESTROY_DAYS = 7;
export const MAX_DESTROY_DAYS = 365;
/**
 * Wraps per KEK version before a forced rotation: 2^31, half of the 2^32 random 96-bit nonces
 * NIST SP 800-38D §8.3 allows per GCM key (collision probability below 2^-33 at 2^31).
 */
export const DEFAULT_WRAP_LIMIT = 2 ** 31;

/**
 * "decrypt": open a file, or release its key to anyone (adding a recipient). "rewrap": only
 * re-wrap it under the primary versions of the file's own keys (--to-latest, campaigns).
 * "eradicate": `incident eradicate` resealing a file away from a version the incident's
 * containment disabled (in this process only; the version stays disabled for everyone else).
 */
export type UsePurpose = "decrypt" | "rewrap" | "eradicate";

export function findVersion(k: KeyDoc, version: number): VersionDoc | undefined {
  return k.versions.find((v) => v.version === version);
}

export function versionOf(k: KeyDoc, version: number): VersionDoc {
  return (
    findVersion(k, version) ??
    fail("E_USAGE", `key ${k.name} has no version ${version} (versions: ${versionList(k)})`)
  );
}

function versionList(k: KeyDoc): string {
  return k.versions.map((v) => v.version).join(", ");
}

const rewrapFix = "rewrap it: `tensorseal rewrap --to-latest FILE`";

/**
 * Null when `version` of `k` may unwrap a file key for `purpose`; otherwise the refusal message
 * (the caller throws E_KEY_STATE). Unknown versions are not refused here (not this keystore's).
 */
export function refusal(k: KeyDoc, v: VersionDoc, purpose: UsePurpose): string | null {
  const what = `version ${v.version} of key ${k.name}`;
  switch (v.state) {
    case "destroyed":
      return `${what} was destroyed on ${v.destroyed}: files wrapped only under it can never be opened again`;
    case "scheduled_for_destruction":
      return `${what} is scheduled for destruction after ${v.destroy_after} and cannot be used: cancel with \`tensorseal keys cancel-destroy ${k.name} ${v.version}\`, enable it, and ${rewrapFix}`;
    case "disabled":
      if (purpose === "eradicate") return null;
      return `${what} is disabled: enable it with \`tensorseal keys enable ${k.name} ${v.version}\`, then ${rewrapFix}`;
    case "enabled":
      if (purpose === "decrypt" && v.version < k.min_decryption_version) {
        return `${what} is below its min_decryption_version ${k.min_decryption_version}: ${rewrapFix}`;
      }
      return null;
  }
}

/** Refuses (E_KEY_STATE) unless the primary version may wrap new file keys. */
export function checkEncryptable(k: KeyDoc): VersionDoc {
  const p = versionOf(k, k.primary);
  if (p.state !== "enabled") {
    fail("E_KEY_STATE", `primary version ${p.version} of key ${k.name} is ${p.state}: rotate it`);
  }
  if (p.version < k.min_encryption_version) {
    fail(
      "E_KEY_STATE",
      `primary version ${p.version} of key ${k.name} is below its min_encryption_version ${k.min_encryption_version}: rotate it with \`tensorseal keys rotate ${k.name}\``,
    );
  }
  return p;
}

function notPrimary(k: KeyDoc, v: VersionDoc, action: string): void {
  if (v.version === k.primary) {
    fail(
      "E_USAGE",
      `cannot ${action} version ${v.version} of key ${k.name}: it is the primary version; rotate first (\`tensorseal keys rotate ${k.name}\`)`,
    );
  }
}

function wrongState(k: KeyDoc, v: VersionDoc, action: string, needs: string): never {
  return fail(
    "E_USAGE",
    `cannot ${action} version ${v.version} of key ${k.name}: it is ${v.state.replaceAll("_", " ")} (needs ${needs})`,
  );
}

export function disableVersion(k: KeyDoc, version: number): void {
  const v = versionOf(k, version);
  notPrimary(k, v, "disable");
  if (v.state === "disabled") return;
  if (v.state !== "enabled") wrongState(k, v, "disable", "enabled");
  v.state = "disabled";
}

export function enableVersion(k: KeyDoc, version: number): void {
  const v = versionOf(k, version);
  if (v.state === "enabled") return;
  if (v.state !== "disabled")
    wrongState(k, v, "enable", "disabled; cancel a scheduled destroy first");
  v.state = "enabled";
}

export function scheduleDestroy(k: KeyDoc, version: number, now: Date, days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > MAX_DESTROY_DAYS) {
    fail("E_USAGE", `the destroy waiting period must be 1..${MAX_DESTROY_DAYS} days, got ${days}`);
  }
  const v = versionOf(k, version);
  notPrimary(k, v, "destroy");
  if (v.state !== "enabled" && v.state !== "disabled")
    wrongState(k, v, "schedule destruction of", "enabled or disabled");
  v.state = "scheduled_for_destruction";
  v.destroy_after = new Date(now.getTime() + days * DAY_SECONDS * 1000).toISOString();
}

export function cancelDestroy(k: KeyDoc, version: number): void {
  const v = versionOf(k, version);
  if (v.state !== "scheduled_for_destruction")
    wrongState(k, v, "cancel destruction of", "scheduled for destruction");
  v.state = "disabled";
  delete v.destroy_after;
}

/** Erases the material of versions whose waiting period has passed; returns them. */
export function purgeDue(k: KeyDoc, now: Date): VersionDoc[] {
  const out: VersionDoc[] = [];
  for (const v of k.versions) {
    if (v.state !== "scheduled_for_destruction") continue;
    if (Date.parse(v.destroy_after!) > now.getTime()) continue;
    v.state = "destroyed";
    v.destroyed = now.toISOString();
    delete v.destroy_after;
    delete v.nonce;
    delete v.material;
    out.push(v);
  }
  return out;
}

export interface KeySettings {
  minDecryptionVersion?: number;
  minEncryptionVersion?: number;
  /** Seconds; null removes the period. */
  rotationPeriod?: number | null;
  /** Governance metadata; "" removes the field. */
  owner?: string;
  purpose?: string;
  tier?: string;
}

export function applySettings(k: KeyDoc, s: KeySettings): void {
  const bound = (n: number, what: string) => {
    if (!Number.isInteger(n) || n < 1 || n > k.primary) {
      fail("E_USAGE", `${what} for key ${k.name} must be 1..${k.primary} (the primary version)`);
    }
    return n;
  };
  if (s.minDecryptionVersion !== undefined)
    k.min_decryption_version = bound(s.minDecryptionVersion, "min_decryption_version");
  if (s.minEncryptionVersion !== undefined)
    k.min_encryption_version = bound(s.minEncryptionVersion, "min_encryption_version");
  if (s.rotationPeriod === null) delete k.rotation_period;
  else if (s.rotationPeriod !== undefined) {
    if (!Number.isInteger(s.rotationPeriod) || s.rotationPeriod < 1) {
      fail("E_USAGE", "rotation period must be a positive whole number of seconds");
    }
    k.rotation_period = s.rotationPeriod;
  }
  for (const field of ["owner", "purpose", "tier"] as const) {
    const value = s[field];
    if (value === undefined) continue;
    if (value === "") {
      delete k[field];
      continue;
    }
    const why = metadataProblem(field, value);
    if (why) fail("E_USAGE", `--${field}: ${why}`);
    k[field] = value;
  }
}

/** True when the key has a rotation period and its primary is at least that old. */
export function rotationDue(k: KeyDoc, now: Date): boolean {
  if (k.rotation_period === undefined) return false;
  const created = Date.parse(versionOf(k, k.primary).created);
  return now.getTime() - created >= k.rotation_period * 1000;
}
