/**
 * `audit query`: the entries that match a filter, from the database or over the API, a page at
 * a time. Over the API each entry comes with its stored canonical text, and its hash is
 * recomputed here: an entry whose text does not hash to what the chain says is refused
 * (E_PROVIDER: the server answered inconsistently) rather than shown. A filtered page proves each entry, not that none was left out:
 * `audit verify` proves the whole chain.
 */
import { fail } from "../../format/errors.js";
import type { Database } from "../db/schema.js";
import type { JsonClient } from "./api-source.js";
import { sha256 } from "./chain.js";
import { type AuditFilter, queryAuditPage } from "./index-store.js";

export interface QueriedEntry {
  readonly seq: number;
  /** The canonical text the chain hashed. */
  readonly text: string;
  readonly hash: string;
}

const PAGE = 1000;

/** Matching entries after `after`, at most `limit` (Infinity: all), from the database. */
export async function* queryDatabase(
  d: Database,
  filter: AuditFilter,
  after = 0,
  limit = Number.POSITIVE_INFINITY,
): AsyncGenerator<QueriedEntry> {
  let left = limit;
  for (let since = after; left > 0; ) {
    const rows = await queryAuditPage(d, filter, since, Math.min(PAGE, left));
    if (rows.length === 0) return;
    for (const r of rows) {
      since = Number(r.seq);
      left--;
      yield { seq: since, text: r.entry, hash: r.hash };
    }
  }
}

/** The same over `GET /v1/audit` (a token with the audit scope); each entry's hash checked. */
export async function* queryApi(
  client: JsonClient,
  filter: AuditFilter,
  after = 0,
  limit = Number.POSITIVE_INFINITY,
): AsyncGenerator<QueriedEntry> {
  let left = limit;
  for (let since = after; left > 0; ) {
    const params = new URLSearchParams({
      since: String(since),
      limit: String(Math.min(PAGE, left)),
      canonical: "true",
    });
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) params.set(k, v);
    const r = await client.get(`/v1/audit?${params}`);
    if (r.status !== 200) client.refused("/v1/audit", r);
    const { entries, nextSince, more } = r.body as {
      entries?: unknown;
      nextSince?: unknown;
      more?: unknown;
    };
    if (!Array.isArray(entries) || typeof nextSince !== "number" || typeof more !== "boolean")
      fail("E_PROVIDER", "key service /v1/audit: malformed answer");
    for (const e of entries as Record<string, unknown>[]) {
      const entry = checked(e, since);
      since = entry.seq;
      left--;
      yield entry;
      if (left === 0) return;
    }
    if (!more) return;
  }
}

/** An API entry whose canonical text hashes to its hash and names its seq, else E_PROVIDER. */
function checked(e: Record<string, unknown>, after: number): QueriedEntry {
  const { seq, hash, canonical: text } = e;
  if (typeof seq !== "number" || typeof hash !== "string" || typeof text !== "string")
    return fail(
      "E_PROVIDER",
      "key service /v1/audit: an entry without seq, hash or canonical text",
    );
  if (seq <= after)
    return fail("E_PROVIDER", `key service /v1/audit: entry ${seq} is out of order`);
  let stated: unknown;
  try {
    stated = (JSON.parse(text) as { seq?: unknown }).seq;
  } catch {
    stated = undefined;
  }
  if (sha256(text) !== hash || stated !== seq)
    return fail(
      "E_PROVIDER",
      `key service /v1/audit: entry ${seq}'s text does not match its hash (run audit verify)`,
    );
  return { seq, text, hash };
}
