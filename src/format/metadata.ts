/**
 * Governance metadata of a sealed file (spec/FORMAT.md §2.2.1): sensitivity tier, purpose and
 * owner, stored as reserved `tensorseal:` entries of the descriptor's labels map. The labels are
 * descriptor bytes, so these are authenticated by the header MAC and the payload derivation:
 * editing one makes the file fail `E_HEADER_MAC` (and `E_COMMITMENT`).
 */
import { fail } from "./errors.js";

export const TIER_LABEL = "tensorseal:tier";
export const PURPOSE_LABEL = "tensorseal:purpose";
export const OWNER_LABEL = "tensorseal:owner";
/** Every label key with this prefix is reserved to the format (writers set them by name). */
export const RESERVED_LABEL_PREFIX = "tensorseal:";

export const TIER_NAME = /^[a-z][a-z0-9-]{0,31}$/;
export const MAX_METADATA_TEXT = 255;

export interface FileMetadata {
  readonly tier?: string;
  readonly purpose?: string;
  readonly owner?: string;
}

/** Why `value` is not a valid value for metadata field `field`, or null. */
export function metadataProblem(field: "tier" | "purpose" | "owner", value: string): string | null {
  if (field === "tier") {
    return TIER_NAME.test(value)
      ? null
      : "a tier name is 1..32 characters of a-z, 0-9 and -, starting with a letter";
  }
  if (value.length === 0) return `${field} must not be empty`;
  if (Buffer.byteLength(value) > MAX_METADATA_TEXT)
    return `${field} exceeds ${MAX_METADATA_TEXT} bytes`;
  // C0, DEL and C1 controls: the value is printed by inspect and inventory.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(value)) return `${field} contains a control character`;
  return null;
}

const FIELDS = [
  ["tier", TIER_LABEL],
  ["purpose", PURPOSE_LABEL],
  ["owner", OWNER_LABEL],
] as const;

/** Checks the reserved entries of a labels map (readers: E_MALFORMED on a bad value). */
export function validateMetadataLabels(labels: Readonly<Record<string, string>>): void {
  for (const [field, key] of FIELDS) {
    const v = labels[key];
    if (v === undefined) continue;
    const why = metadataProblem(field, v);
    if (why) fail("E_MALFORMED", `label ${key}: ${why}`);
  }
}

/** The metadata a labels map records. */
export function metadataOf(labels: Readonly<Record<string, string>>): FileMetadata {
  const out: { tier?: string; purpose?: string; owner?: string } = {};
  for (const [field, key] of FIELDS) {
    const v = labels[key];
    if (v !== undefined) out[field] = v;
  }
  return out;
}

/** Labels with the metadata entries added (a writer refuses bad values: E_USAGE). */
export function withMetadata(
  labels: Readonly<Record<string, string>>,
  meta: FileMetadata,
): Record<string, string> {
  const out: Record<string, string> = { ...labels };
  for (const [field, key] of FIELDS) {
    const v = meta[field];
    if (v === undefined) continue;
    const why = metadataProblem(field, v);
    if (why) fail("E_USAGE", `--${field}: ${why}`);
    out[key] = v;
  }
  return out;
}
