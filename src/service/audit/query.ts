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

/** One page: up to `n` matching entries after `since`, and whether more may follow. */
type PageReader = (since: number, n: number) => Promise<{ entries: QueriedEntry[]; more: boolean }>;

/** Matching entries after `after`, at most `limit` (Infinity: all), a page at a time. */
async function* paged(
  read: PageReader,
  after: number,
  limit: number,
): AsyncGenerator<QueriedEntry> {
  let left = limit;
  for (let since = after; left > 0; ) {
    const { entries, more } = await read(since, Math.min(PAGE, left));
    for (const e of entries.slice(0, left)) {
      since = e.seq;
      left--;
      yield e;
    }
    if (!more || entries.length === 0) return;
  }
}

/** Matching entries after `after`, at most `limit` (Infinity: all), from the database. */
export function queryDatabase(
  d: Database,
  filter: AuditFilter,
  after = 0,
  limit = Number.POSITIVE_INFINITY,
): AsyncGenerator<QueriedEntry> {
  return paged(
    async (since, n) => {
      const rows = await queryAuditPage(d, filter, since, n);
      const entries = rows.map((r) => ({ seq: Number(r.seq), text: r.entry, hash: r.hash }));
      return { entries, more: rows.length === n };
    },
    after,
    limit,
  );
}

/** The same over `GET /v1/audit` (a token with the audit scope); each entry's hash checked. */
export function queryApi(
  client: JsonClient,
  filter: AuditFilter,
  after = 0,
  limit = Number.POSITIVE_INFINITY,
): AsyncGenerator<QueriedEntry> {
  return paged(
    async (since, n) => {
      const params = new URLSearchParams({
        since: String(since),
        limit: String(n),
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
      let last = since;
      const out = (entries as Record<string, unknown>[]).map((e) => {
        const entry = checked(e, last);
        last = entry.seq;
        return entry;
      });
      return { entries: out, more };
    },
    after,
    limit,
  );
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
