/**
 * SPIFFE IDs (SPIFFE-ID spec §2): `spiffe://TRUST-DOMAIN/PATH`, parsed strictly by hand rather
 * than with `URL`, which normalises (lowercases, resolves `..`, decodes) what the spec forbids.
 *
 *   trust domain  [a-z0-9._-]+, at most 255 characters (no uppercase, port or userinfo)
 *   path          one or more `/SEGMENT`, SEGMENT [A-Za-z0-9._-]+ and not `.` or `..`
 *                 (no empty segment, no trailing slash, no percent-encoding, query or fragment)
 *   whole         at most 2048 bytes
 *
 * A workload's ID must have a path: `spiffe://td` names the trust domain, not a workload.
 */

export interface SpiffeId {
  readonly id: string;
  readonly trustDomain: string;
  readonly path: string;
}

const PREFIX = "spiffe://";
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** The parsed ID, or why it is not a workload SPIFFE ID. */
export function parseSpiffeId(s: string): SpiffeId | { readonly invalid: string } {
  if (s.length > 2048) return { invalid: "longer than 2048 bytes" };
  if (!s.startsWith(PREFIX)) return { invalid: "scheme is not spiffe://" };
  const rest = s.slice(PREFIX.length);
  const slash = rest.indexOf("/");
  const td = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash);
  if (!TRUST_DOMAIN.test(td))
    return {
      invalid: "trust domain must be 1..255 of [a-z0-9._-] (no uppercase, port, userinfo)",
    };
  if (path === "") return { invalid: "no path: the ID names a trust domain, not a workload" };
  for (const seg of path.slice(1).split("/")) {
    if (seg === "") return { invalid: "empty path segment (or trailing slash)" };
    if (seg === "." || seg === "..") return { invalid: "dot segment in path" };
    if (!SEGMENT.test(seg))
      return { invalid: "path characters must be [A-Za-z0-9._-] (no query, fragment, %)" };
  }
  return { id: s, trustDomain: td, path };
}

/** Throws with the reason when `s` is not a valid workload SPIFFE ID (configuration checks). */
export function spiffeIdOrThrow(s: string, what: string): SpiffeId {
  const p = parseSpiffeId(s);
  if ("invalid" in p) throw new Error(`${what} ${JSON.stringify(s)}: ${p.invalid}`);
  return p;
}

/** Throws unless `d` is a valid trust domain name (`--spiffe-trust-domain`). */
export function spiffeTrustDomainOrThrow(d: string): string {
  if (!TRUST_DOMAIN.test(d))
    throw new Error(
      `--spiffe-trust-domain ${JSON.stringify(d)}: a trust domain is 1..255 of [a-z0-9._-]`,
    );
  return d;
}
