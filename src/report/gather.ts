/**
 * Collects a report's data: the inventory and doctor findings (local keystore, PATHS, and the
 * key service when one is named), the window's audit entries from the service database (--db)
 * or its API (--server, a token with the audit scope), and the chain verification of the whole
 * log. A part that cannot be read is left out with a note, never invented.
 */
import { historyPath, readHistory } from "../doctor/drill-history.js";
import { runDoctor } from "../doctor/run.js";
import { isTensorSealError } from "../format/errors.js";
import type { Stanza } from "../format/stanza.js";
import { runInventory } from "../inventory/index.js";
import { findSealedFiles } from "../keys/campaign-paths.js";
import type { KeystoreOptions } from "../keys/index.js";
import { serviceClientFromEnv } from "../keys/service/index.js";
import {
  type AuditFilter,
  apiSource,
  openDatabase,
  type QueriedEntry,
  queryApi,
  queryDatabase,
  type VerifyResult,
  verifyAuditLog,
  verifyAuditSource,
} from "../service/index.js";
import type { ChainStatus, DrillLine, ReportData, RotationLine } from "./model.js";
import { AuditSummary, type Entry } from "./summarize.js";

export interface ReportOptions {
  readonly since: string;
  readonly until: string;
  readonly paths: readonly string[];
  readonly home: string;
  readonly now: Date;
  readonly defaultRotation: number | null;
  /** The audit comes from this database, or else from `server`'s API. */
  readonly db?: string | undefined;
  readonly server?: string | undefined;
  readonly publicKey?: string | undefined;
  readonly keystoreOptions: KeystoreOptions;
  readonly describe: (s: Stanza) => string;
}

type Source = { kind: "db"; url: string } | { kind: "api"; url: string } | null;

function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url;
  }
}

function chainStatus(r: VerifyResult): ChainStatus {
  return {
    ok: r.ok,
    entries: r.entries,
    checkpoints: r.checkpoints,
    lastSeq: r.lastSeq,
    unsigned: r.unsigned,
    publicKey: r.publicKey,
    pinned: r.pinned,
    problems: r.problems.slice(0, 20),
  };
}

async function readAudit(
  src: Exclude<Source, null>,
  filter: AuditFilter,
  publicKey: string | undefined,
): Promise<{ summary: AuditSummary; chain: ChainStatus }> {
  const summary = new AuditSummary();
  const take = (e: QueriedEntry) => summary.add(JSON.parse(e.text) as Entry);
  const opts = publicKey ? { publicKey } : {};
  if (src.kind === "db") {
    const d = await openDatabase(src.url);
    try {
      for await (const e of queryDatabase(d, filter)) take(e);
      return { summary, chain: chainStatus(await verifyAuditLog(d, opts)) };
    } finally {
      await d.close();
    }
  }
  const c = serviceClientFromEnv(src.url);
  if (!c) throw new Error("no key service client");
  try {
    for await (const e of queryApi(c, filter)) take(e);
    return { summary, chain: chainStatus(await verifyAuditSource(apiSource(c), opts)) };
  } finally {
    c.close();
  }
}

/** Drills run in the window, from the history `drill run` appends to (null: no history). */
async function drillsIn(since: string, until: string): Promise<DrillLine[] | null> {
  const h = await readHistory(historyPath());
  if (!h) return null;
  return h.records
    .filter((r) => r.time >= since && r.time < until)
    .map((r) => ({
      scenario: r.scenario,
      result: r.result,
      at: r.time,
      detail: [
        `checks ${r.checks.passed}/${r.checks.total}`,
        r.detectMs !== null ? `detected in ${r.detectMs} ms` : "",
        r.containMs !== null ? `contained in ${r.containMs} ms` : "",
        r.failed.length ? `failed: ${r.failed.join(", ")}` : "",
        `database ${r.database}`,
      ]
        .filter(Boolean)
        .join("; "),
    }));
}

function why(e: unknown): string {
  return isTensorSealError(e) ? e.message : `${(e as Error)?.name ?? "Error"}`;
}

export async function gatherReport(o: ReportOptions): Promise<ReportData> {
  const notes: string[] = [];
  const found = o.paths.length > 0 ? await findSealedFiles(o.paths) : undefined;
  // What the inventory and the doctor both look at: the same files, keystore and service.
  const scope = {
    found,
    paths: o.paths,
    home: o.home,
    now: o.now,
    defaultRotation: o.defaultRotation,
    server: o.server,
    keystoreOptions: o.keystoreOptions,
  };
  const inventory = await runInventory({ ...scope, describe: o.describe });
  notes.push(...inventory.notes);
  const doctor = await runDoctor({ ...scope, certDays: 30, db: o.db, tokenDays: 90 });
  if (o.db && !o.server)
    notes.push(
      "the audit was read from the database: service keys, their rotation schedule and the artifact registry are listed only over the API (--server)",
    );
  const src: Source = o.db
    ? { kind: "db", url: o.db }
    : o.server
      ? { kind: "api", url: o.server }
      : null;
  let summary: AuditSummary | null = null;
  let chain: ChainStatus | null = null;
  if (src) {
    try {
      ({ summary, chain } = await readAudit(src, { from: o.since, until: o.until }, o.publicKey));
      if (!o.publicKey)
        notes.push(
          "the audit chain's checkpoints were checked under the public key the audit source reports: give --public-key (the key `serve` printed) so a compromised source cannot vouch for itself",
        );
    } catch (e) {
      notes.push(
        `the audit could not be read (${why(e)}): releases, denials and approvals are left out`,
      );
    }
  } else
    notes.push("no audit source (--db or --server): releases, denials and approvals are left out");
  const rotated = summary?.rotations() ?? new Map<string, readonly string[]>();
  const rotations: RotationLine[] = inventory.keys
    .filter((k) => k.listed && k.primaryVersion !== null)
    .map((k) => ({
      key: k.name,
      source: k.provider === "service" ? `service ${k.scope ?? ""}`.trim() : k.provider,
      primaryVersion: k.primaryVersion,
      due: k.rotationDue,
      overdue: k.rotationOverdue,
      rotatedInWindow: k.provider === "service" ? [...(rotated.get(k.name) ?? [])] : [],
    }));
  return {
    generated: o.now.toISOString(),
    window: { since: o.since, until: o.until },
    auditSource: src ? withoutCredentials(src.url) : null,
    inventory,
    releases: summary?.releases() ?? null,
    denied: summary?.denied() ?? null,
    approvals: summary?.approvals() ?? null,
    rotations,
    findings: doctor.findings,
    drills: await drillsIn(o.since, o.until),
    chain,
    notes,
  };
}
