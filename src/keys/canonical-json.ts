/**
 * Canonical JSON for MAC input: object keys sorted by UTF-16 code unit, no whitespace, only
 * strings, safe integers, arrays and plain objects. One document has exactly one encoding, so
 * re-ordering or re-indenting the file cannot change what the MAC covers.
 */
import { fail } from "../format/errors.js";

export function canonicalJson(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) fail("E_KEYSTORE", "keystore holds a non-integer number");
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const keys = Object.keys(v).sort();
    const obj = v as Record<string, unknown>;
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
  }
  return fail("E_KEYSTORE", `keystore holds an unsupported JSON value (${typeof v})`);
}
