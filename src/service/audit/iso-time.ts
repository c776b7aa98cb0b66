/**
 * Times for audit filters: an ISO 8601 date (`2026-12-01`) or UTC time (`2026-12-01T10:00Z`,
 * seconds and milliseconds optional), normalised to the stored form (`toISOString`) so string
 * comparison orders them. Dates that do not exist (`2026-02-31`, which Date would roll over
 * into March) are refused.
 */
export const ISO_TIME_PATTERN =
  "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,3})?)?Z)?$";

const ISO_TIME = new RegExp(ISO_TIME_PATTERN);

/** The normalised time, or null when `s` is not one. */
export function isoTime(s: string): string | null {
  if (!ISO_TIME.test(s)) return null;
  const t = new Date(s);
  if (Number.isNaN(t.getTime())) return null;
  const iso = t.toISOString();
  return iso.slice(0, 10) === s.slice(0, 10) ? iso : null;
}
