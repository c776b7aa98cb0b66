/**
 * Where `audit verify` reads a log from. One verifier (verify.ts) checks any source; this file
 * holds the database source, api-source.ts the HTTPS one. A source reports what it sees and
 * proves nothing itself: the verifier recomputes hashes and checks signatures.
 */
import type { Database } from "../db/schema.js";
import type { SignedCheckpoint } from "./chain.js";
import { allAuditRows } from "./store.js";

/** One stored entry: the canonical text the chain hashes, and the hash stored beside it. */
export interface SourceEntry {
  seq: number;
  text: string;
  hash: string;
}

export interface SourceInfo {
  /** The server id checkpoints are signed for. */
  server: string;
  /** Checkpoints must exist at every multiple of this (0: not known, not checked). */
  every: number;
  /** The public key the source itself claims (used only when none is pinned). */
  publicKey: string;
}

export interface AuditSource {
  /** Asked after checkpoints() (the API source learns it from the checkpoint pages). */
  info(): Promise<SourceInfo>;
  /** Entries with seq > since in sequence order, up to the head at the time of reading. */
  entries(since: number): AsyncIterable<SourceEntry>;
  /** Every signed checkpoint, in any order. */
  checkpoints(): Promise<SignedCheckpoint[]>;
}

/** The log read straight from the service database. */
export function databaseSource(d: Database): AuditSource {
  return {
    async info() {
      const rows = await d.db.selectFrom("meta").selectAll().execute();
      const meta = Object.fromEntries(rows.map((r) => [r.k, r.v]));
      return {
        server: meta.server_id ?? "",
        every: Number(meta.checkpoint_every ?? 0),
        publicKey: meta.audit_public_key ?? "",
      };
    },
    async *entries(since) {
      for await (const row of allAuditRows(d, 2000, since))
        yield { seq: Number(row.seq), text: row.entry, hash: row.hash };
    },
    async checkpoints() {
      const rows = await d.db.selectFrom("checkpoints").selectAll().orderBy("seq").execute();
      return rows.map((r) => ({
        seq: Number(r.seq),
        hash: r.hash,
        signature: r.signature,
        ts: r.ts,
      }));
    },
  };
}
