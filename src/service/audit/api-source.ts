/**
 * The audit log read over the query API (`audit verify --server`), for an auditor without
 * database access. Nothing here is trusted: entries come with their stored canonical text
 * (`canonical=true`), which the verifier hashes itself, and checkpoints are checked under the
 * pinned key. Every page read is itself audited, so the log grows while it is read; the
 * verifier stops at the head it reached (verify.ts).
 */
import { fail } from "../../format/errors.js";
import { canonical } from "./canonical.js";
import type { SignedCheckpoint } from "./chain.js";
import type { AuditSource, SourceEntry, SourceInfo } from "./source.js";

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** What the source needs of an HTTP client (ServiceClient has it). */
export interface JsonClient {
  get(path: string): Promise<Reply>;
  /** Throws the refusal as an error (E_PROVIDER). */
  refused(path: string, r: Reply): never;
}

const PAGE = 1000;

const isSeq = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);

function malformed(path: string, what: string): never {
  return fail("E_PROVIDER", `key service ${path}: malformed answer (${what})`);
}

/**
 * The text the chain hashed. Older servers send no `canonical`: rebuild it from the parsed
 * fields, which is exact only while the response schema passes every field unchanged.
 */
function entryText(e: Record<string, unknown>): string {
  if (typeof e.canonical === "string") return e.canonical;
  const { hash: _h, canonical: _c, ...fields } = e;
  try {
    return canonical(fields);
  } catch {
    return JSON.stringify(fields); // not canonical: the verifier reports the entry as edited
  }
}

/** `page`: entries and checkpoints per request (1..1000; small pages in tests). */
export function apiSource(client: JsonClient, page = PAGE): AuditSource {
  let info: SourceInfo | null = null;
  return {
    async info() {
      if (!info) await this.checkpoints();
      return info!;
    },
    async *entries(since) {
      for (let more = true; more; ) {
        const path = `/v1/audit?since=${since}&limit=${page}&canonical=true`;
        const r = await client.get(path);
        if (r.status !== 200) client.refused("/v1/audit", r);
        const { entries, nextSince } = r.body;
        if (!Array.isArray(entries) || !isSeq(nextSince)) malformed(path, "no entries");
        more = r.body.more === true;
        // A page that does not advance would loop for ever.
        if (more && nextSince <= since) malformed(path, "nextSince does not advance");
        since = nextSince;
        for (const e of entries as Record<string, unknown>[]) {
          if (!isSeq(e?.seq) || typeof e.hash !== "string") malformed(path, "entry without seq");
          yield { seq: e.seq, text: entryText(e), hash: e.hash } satisfies SourceEntry;
        }
      }
    },
    async checkpoints() {
      const out: SignedCheckpoint[] = [];
      let before: number | undefined;
      for (let more = true; more; ) {
        const path = `/v1/audit/checkpoints?limit=${page}${before ? `&before=${before}` : ""}`;
        const r = await client.get(path);
        if (r.status !== 200) client.refused("/v1/audit/checkpoints", r);
        const { server, publicKey, checkpoints, nextBefore, every } = r.body;
        if (typeof server !== "string" || !Array.isArray(checkpoints))
          malformed(path, "no checkpoints");
        info ??= {
          server,
          publicKey: typeof publicKey === "string" ? publicKey : "",
          every: isSeq(every) ? every : 0,
        };
        for (const c of checkpoints as Record<string, unknown>[]) {
          const { seq, hash, signature, ts } = c ?? {};
          if (!isSeq(seq) || typeof hash !== "string" || typeof signature !== "string")
            malformed(path, "checkpoint without seq, hash or signature");
          out.push({ seq, hash, signature, ts: typeof ts === "string" ? ts : "" });
        }
        // A server without paging (no nextBefore) returns the newest page only.
        more = r.body.more === true && isSeq(nextBefore);
        if (more && before !== undefined && (nextBefore as number) >= before)
          malformed(path, "nextBefore does not go down");
        before = nextBefore as number;
      }
      return out;
    },
  };
}
