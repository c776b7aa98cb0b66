/**
 * First-seen clients: the (source address, client certificate fingerprint, workload id) tuples
 * each principal has used, in the database so replicas share them and a restart does not alert
 * again. A tuple this replica already knows costs one Set lookup; an unknown one costs an
 * insert that does nothing on conflict — exactly one replica inserts it, so exactly one alerts.
 */
import { createHash } from "node:crypto";
import type { Database } from "../db/schema.js";

/** Tuples remembered per replica; beyond this the oldest are forgotten (looked up again). */
const MAX_KNOWN = 100_000;

export interface ClientTuple {
  readonly principal: string;
  readonly source: string;
  /** SHA-256 fingerprint of the client certificate, "" without one. */
  readonly cert: string;
  readonly workload: string;
}

/** What is new about a tuple: the principal itself, or the parts it had never used. */
export type Novelty = { readonly principal: true } | { readonly parts: readonly string[] };

export class ClientRegistry {
  private readonly known = new Set<string>();

  constructor(
    private readonly d: Database,
    private readonly now: () => number,
  ) {}

  /** True when the tuple is known here (the hot path: no I/O). */
  knows(t: ClientTuple): boolean {
    return this.known.has(keyOf(t));
  }

  /**
   * Records the tuple; null when some replica had already recorded it, else what is new.
   * A combination of parts each seen before is recorded without novelty.
   */
  async record(t: ClientTuple): Promise<Novelty | null> {
    const key = keyOf(t);
    const id = createHash("sha256").update(key).digest("hex");
    const r = await this.d.db
      .insertInto("anomaly_clients")
      .values({ id, ...t, first_seen: new Date(this.now()).toISOString() })
      .onConflict((oc) => oc.column("id").doNothing())
      .executeTakeFirst();
    this.remember(key);
    if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 0) return null;
    const seen = (col: "source" | "cert" | "workload", v: string) =>
      this.d.db
        .selectFrom("anomaly_clients")
        .select("id")
        .where("principal", "=", t.principal)
        .where("id", "!=", id)
        .where(col, "=", v)
        .limit(1)
        .executeTakeFirst()
        .then((row) => row !== undefined);
    const any = await this.d.db
      .selectFrom("anomaly_clients")
      .select("id")
      .where("principal", "=", t.principal)
      .where("id", "!=", id)
      .limit(1)
      .executeTakeFirst();
    if (!any) return { principal: true };
    const parts: string[] = [];
    if (!(await seen("source", t.source))) parts.push("source");
    if (t.cert !== "" && !(await seen("cert", t.cert))) parts.push("certificate");
    if (!(await seen("workload", t.workload))) parts.push("workload");
    return { parts };
  }

  private remember(key: string): void {
    if (this.known.size >= MAX_KNOWN) this.known.delete(this.known.values().next().value as string);
    this.known.add(key);
  }
}

/** Unambiguous: every part length-prefixed. */
function keyOf(t: ClientTuple): string {
  return [t.principal, t.source, t.cert, t.workload].map((p) => `${p.length}:${p}`).join("|");
}
