/**
 * The service's own inventory (`GET /v1/inventory`): how many registered artifacts sit on each
 * key version, and each artifact's last release from the audit index (audit_refs, migration
 * 0008) — one grouped query per page, not one per artifact.
 */
import type { Database } from "../db/schema.js";

/** The routes that hand out a file key (as in the auditor report). */
export const RELEASE_ACTIONS = [
  "datakeys.unwrap",
  "datakeys.unwrap-batch",
  "datakeys.unwrap-attested",
] as const;

export interface LastRelease {
  readonly seq: number;
  readonly ts: string | null;
  readonly principal: string | null;
}

/** "key\0version" -> registered artifacts on it (not counting superseded ones: their files are gone). */
export async function artifactsPerVersion(d: Database): Promise<Map<string, number>> {
  const rows = await d.db
    .selectFrom("artifacts")
    .select(["key_name", "key_version", (eb) => eb.fn.countAll<string>().as("n")])
    .where("superseded_by", "is", null)
    .groupBy(["key_name", "key_version"])
    .execute();
  return new Map(rows.map((r) => [`${r.key_name}\0${Number(r.key_version)}`, Number(r.n)]));
}

/** Artifact id -> its last allowed release (absent: never released, as far as the audit shows). */
export async function lastReleases(
  d: Database,
  ids: readonly string[],
): Promise<Map<string, LastRelease>> {
  if (ids.length === 0) return new Map();
  const latest = await d.db
    .selectFrom("audit_refs")
    .innerJoin("audit", "audit.seq", "audit_refs.seq")
    .select(["audit_refs.ref as ref", (eb) => eb.fn.max("audit.seq").as("seq")])
    .where("audit_refs.kind", "=", "artifact")
    .where("audit_refs.ref", "in", [...ids])
    .where("audit.action", "in", [...RELEASE_ACTIONS])
    .where("audit.outcome", "=", "allowed")
    .groupBy("audit_refs.ref")
    .execute();
  if (latest.length === 0) return new Map();
  const seqs = latest.map((r) => Number(r.seq));
  const rows = await d.db
    .selectFrom("audit")
    .select(["seq", "ts", "principal"])
    .where("seq", "in", seqs)
    .execute();
  const bySeq = new Map(rows.map((r) => [Number(r.seq), r]));
  return new Map(
    latest.map((r) => {
      const row = bySeq.get(Number(r.seq));
      return [
        r.ref,
        { seq: Number(r.seq), ts: row?.ts ?? null, principal: row?.principal ?? null },
      ];
    }),
  );
}
