/**
 * `serve --mtls-roles FILE`: roles for SPIFFE principals. The file is one JSON object whose
 * keys are an exact SPIFFE ID (`spiffe://td/ns/ml/sa/loader`) or a prefix ending in `/*`
 * (`spiffe://td/ns/ml/*`: every ID below `/ns/ml/`, at a segment boundary; `spiffe://td/*`:
 * the whole trust domain), and whose values are arrays of roles. A principal gets the union of
 * the roles of every entry that matches it: entries only ever add, so reading one entry
 * tells what it grants. Without a file SPIFFE principals have no roles and Cedar policies on
 * `context.workload.spiffeId` decide. Anything malformed refuses to load.
 */
import { spiffeIdOrThrow } from "./spiffe.js";

const ROLE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export class SpiffeRoles {
  private constructor(
    private readonly exact: ReadonlyMap<string, readonly string[]>,
    /** Prefix (ending in "/") → roles. */
    private readonly prefixes: ReadonlyMap<string, readonly string[]>,
  ) {}

  static readonly none = new SpiffeRoles(new Map(), new Map());

  /** Parses the file's JSON text; throws naming the bad entry. */
  static parse(text: string, source: string): SpiffeRoles {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new Error(`${source}: not JSON (${(e as Error).message})`);
    }
    if (typeof doc !== "object" || doc === null || Array.isArray(doc))
      throw new Error(`${source}: expected an object {"spiffe://...": ["role", ...]}`);
    const exact = new Map<string, string[]>();
    const prefixes = new Map<string, string[]>();
    for (const [k, v] of Object.entries(doc)) {
      if (!Array.isArray(v) || !v.every((r) => typeof r === "string" && ROLE.test(r)))
        throw new Error(`${source}: ${k}: expected an array of roles matching ${ROLE}`);
      if (k.endsWith("/*")) {
        // Validate the prefix as an ID with a placeholder last segment.
        spiffeIdOrThrow(`${k.slice(0, -1)}x`, `${source}: prefix`);
        prefixes.set(k.slice(0, -1), [...new Set(v as string[])]);
      } else {
        spiffeIdOrThrow(k, `${source}: SPIFFE ID`);
        exact.set(k, [...new Set(v as string[])]);
      }
    }
    return new SpiffeRoles(exact, prefixes);
  }

  rolesOf(spiffeId: string): string[] {
    const out = new Set(this.exact.get(spiffeId) ?? []);
    for (const [prefix, roles] of this.prefixes)
      if (spiffeId.startsWith(prefix)) for (const r of roles) out.add(r);
    return [...out].sort();
  }
}
