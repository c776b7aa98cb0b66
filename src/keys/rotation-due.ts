/**
 * When a key is due for rotation, the one rule for keystore and key service keys alike: its
 * primary version's creation plus its rotation period (seconds).
 */
import type { KeyInfo } from "./index.js";

export interface RotationDue {
  /** When the primary version reaches its period (ISO 8601). */
  readonly due: string;
  /** Seconds. */
  readonly period: number;
  /** "key": the key's own rotation_period; "default": the default period. */
  readonly source: "key" | "default";
  readonly primaryCreated: string;
}

/**
 * When a key is due for rotation: its primary version's creation plus its own rotation period,
 * else `defaultPeriod`; null when neither applies or the primary version is not listed. Shared
 * by doctor (overdue findings), inventory (the due date it lists) and the key service
 * (`rotationDue` of its keys, `POST /v1/rotate-due`).
 */
export function rotationDue(
  k: Pick<KeyInfo, "rotationPeriod" | "primaryVersion"> & {
    readonly versions: readonly { readonly version: number; readonly created: string }[];
  },
  defaultPeriod: number | null,
): RotationDue | null {
  const period = k.rotationPeriod ?? defaultPeriod;
  if (period === null) return null;
  const primary = k.versions.find((v) => v.version === k.primaryVersion);
  const created = primary ? Date.parse(primary.created) : Number.NaN;
  if (!primary || Number.isNaN(created)) return null;
  return {
    due: new Date(created + period * 1000).toISOString(),
    period,
    source: k.rotationPeriod !== null ? "key" : "default",
    primaryCreated: primary.created,
  };
}
