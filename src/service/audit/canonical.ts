/**
 * Canonical JSON for audit entries and checkpoints: keys sorted by UTF-16 code unit, no
 * whitespace; strings, safe integers, booleans, null, arrays and plain objects only. One entry
 * has one encoding, so its hash is well defined.
 */
export function canonical(v: unknown): string {
  if (v === null || typeof v === "boolean") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new Error("audit entries hold only safe integers");
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(",")}}`;
  }
  throw new Error(`audit entries cannot hold ${typeof v}`);
}
