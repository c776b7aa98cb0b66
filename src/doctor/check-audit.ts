/**
 * The key service's audit log, verified by the verifier `audit verify` and `report` use
 * (src/service/audit/verify.ts): read from the service database (`doctor --db`) or over the
 * query API (`doctor --server` with a token holding the audit scope; without one, or refused, the
 * check is skipped silently, as `report` leaves it out).
 *
 * - service.audit-chain-broken (critical): the chain does not verify (an entry edited,
 *   deleted or reordered, a checkpoint missing or badly signed, a rollback).
 * - service.audit-checkpoint-stale (warning): entries have waited longer than `maxDays` after
 *   the newest signed checkpoint (or, with none, since the log began) without one: the
 *   unsigned tail can be rewritten undetected. An unsigned tail younger than that is normal
 *   (checkpoints are signed every N entries or on time, and every API read appends an entry).
 *
 * Whether the service anchors its checkpoints outside the database (serve --checkpoint-anchor)
 * is recorded neither in the database nor in any API answer, so no rule judges it here.
 */
import { isTensorSealError } from "../format/errors.js";
import type { AuditSource, SignedCheckpoint, VerifyResult } from "../service/index.js";
import type { Finding } from "./findings.js";
import type { ServiceAccess } from "./service-access.js";

/** The default of `doctor --checkpoint-days`. */
export const DEFAULT_CHECKPOINT_DAYS = 1;

const SHOWN_PROBLEMS = 3;

export interface AuditObservation {
  readonly result: VerifyResult;
  /** The newest checkpoint at or below the log's end (null: none). */
  readonly lastCheckpoint: SignedCheckpoint | null;
  /** The time of the oldest entry no checkpoint signs (null: none, or unknown). */
  readonly oldestUnsigned: string | null;
}

/** Wraps a source to see what the verifier reads: each entry's time and the checkpoints. */
function watch(inner: AuditSource): {
  source: AuditSource;
  observe(r: VerifyResult): AuditObservation;
} {
  const times = new Map<number, string>();
  let cps: SignedCheckpoint[] = [];
  const source: AuditSource = {
    info: () => inner.info(),
    async *entries(since) {
      for await (const e of inner.entries(since)) {
        times.set(e.seq, entryTime(e.text));
        yield e;
      }
    },
    async checkpoints() {
      cps = await inner.checkpoints();
      return cps;
    },
  };
  return {
    source,
    observe(result) {
      const last =
        [...cps]
          .sort((a, b) => a.seq - b.seq)
          .filter((c) => c.seq <= result.lastSeq)
          .at(-1) ?? null;
      const first = result.lastSeq - result.unsigned + 1;
      return {
        result,
        lastCheckpoint: last,
        oldestUnsigned: result.unsigned > 0 ? (times.get(first) ?? null) : null,
      };
    },
  };
}

function entryTime(text: string): string {
  try {
    const ts = (JSON.parse(text) as { ts?: unknown }).ts;
    return typeof ts === "string" ? ts : "";
  } catch {
    return "";
  }
}

/** `doctor --db`: the log in the service database. */
export async function checkAuditDb(dbUrl: string, now: Date, maxDays: number): Promise<Finding[]> {
  const { openDatabase, databaseSource, verifyAuditSource } = await import("../service/index.js");
  const db = await openDatabase(dbUrl, { poolSize: 1 });
  try {
    const w = watch(databaseSource(db));
    const obs = w.observe(await verifyAuditSource(w.source));
    return judgeAudit(obs, "the service database", now, maxDays);
  } finally {
    await db.close();
  }
}

/** `doctor --server`: the log over the API, when the token in the environment may read it. */
export async function checkAuditServer(
  access: ServiceAccess,
  now: Date,
  maxDays: number,
): Promise<Finding[]> {
  const { origin, client } = access;
  if (!client) return [];
  const { apiSource, verifyAuditSource } = await import("../service/index.js");
  try {
    // A token without the audit scope is refused on the first page: nothing to judge.
    const probe = await client.get("/v1/audit/checkpoints?limit=1");
    if (probe.status !== 200) return [];
    const w = watch(apiSource(client));
    const obs = w.observe(await verifyAuditSource(w.source));
    return judgeAudit(obs, origin, now, maxDays);
  } catch (e) {
    // Unreachable or refused mid-read: service.unreachable (check-tls.ts) or nothing to judge.
    if (isTensorSealError(e) || e instanceof Error) return [];
    throw e;
  }
}

/** The rules, on what the verifier saw (`where` names the source; never a credential). */
export function judgeAudit(
  o: AuditObservation,
  where: string,
  now: Date,
  maxDays: number,
): Finding[] {
  const r = o.result;
  const out: Finding[] = [];
  const cp = o.lastCheckpoint;
  const cpText = cp ? `last checkpoint at entry ${cp.seq}, signed ${cp.ts}` : "no checkpoint";
  const facts = `${r.entries} entries, ${r.checkpoints} checkpoint(s); ${cpText}; ${r.unsigned} unsigned entries after it`;
  if (!r.ok) {
    const shown = r.problems.slice(0, SHOWN_PROBLEMS).join("; ");
    const more =
      r.problems.length > SHOWN_PROBLEMS ? ` (and ${r.problems.length - SHOWN_PROBLEMS} more)` : "";
    out.push({
      id: "service.audit-chain-broken",
      severity: "critical",
      message: `the key service's audit chain does not verify (${r.problems.length} problem(s))`,
      evidence: `${where}: ${facts}; ${shown}${more}`,
      fix: "treat it as an incident: compare with an exported copy or the checkpoint anchors (tensorseal audit verify --anchor FILE), find who had write access to the database, and restore it from a backup",
    });
  }
  if (o.oldestUnsigned) {
    const since = Date.parse(o.oldestUnsigned);
    const days = (now.getTime() - since) / 86400_000;
    if (Number.isFinite(days) && days >= maxDays)
      out.push({
        id: "service.audit-checkpoint-stale",
        severity: "warning",
        message: `${r.unsigned} audit entries have waited ${Math.floor(days)} day(s) or more for a signed checkpoint`,
        evidence: `${where}: ${facts}; the oldest unsigned entry was written ${o.oldestUnsigned}; limit ${maxDays} day(s)`,
        fix: "run the service with time-based checkpoints (serve --checkpoint-interval) and restart it if checkpointing stopped; a clean shutdown signs the head",
      });
  }
  return out;
}
