/**
 * The incident report as data (JSON): timeline, actions with who acted and who approved, files,
 * residual risk, and a forensic appendix from the key service's audit with the result of
 * verifying its hash chain. report-render.ts turns it into Markdown or HTML.
 */
import type { ServiceClient } from "../keys/service/client.js";
import { apiSource } from "../service/audit/api-source.js";
import { queryApi } from "../service/audit/query.js";
import { verifyAuditSource } from "../service/audit/verify.js";
import type { Action, Incident } from "./types.js";

export interface ChainResult {
  readonly verified: boolean;
  readonly ok?: boolean;
  readonly entries?: number;
  readonly lastSeq?: number;
  readonly lastHash?: string;
  readonly pinned?: boolean;
  readonly problems?: string[];
  readonly reason?: string;
}

export interface IncidentReport {
  readonly format: "tensorseal-incident-report";
  readonly v: 1;
  readonly generated: string;
  readonly incident: {
    id: string;
    scope: string;
    class: string;
    severity: string;
    reason: string;
    state: string;
    server: string | null;
    openedBy: string;
  };
  readonly timeline: Incident["times"] & {
    secondsToContain: number | null;
    secondsToEradicate: number | null;
  };
  readonly actions: Action[];
  readonly approvals: { action: string; approval: string; state: string; approvers: string[] }[];
  readonly files: {
    resealed: number;
    rewrapped: number;
    unreachable: number;
    list: Incident["files"];
  };
  readonly exposure: {
    exposed: string[];
    atRisk: string[];
    principals: string[];
    endpoints: string[];
    artifacts: string[];
    releases: number;
  };
  readonly residualRisk: string[];
  readonly forensic: {
    releases: NonNullable<Incident["assessment"]>["releases"];
    /** Audit entries since the incident was opened (the responders' own actions among them). */
    entries: Record<string, unknown>[];
    chain: ChainResult;
  };
}

export interface ReportOptions {
  readonly client: ServiceClient | null;
  /** The audit public key `serve` printed (pinned); else the one the service reports. */
  readonly publicKey?: string;
  readonly now: () => Date;
}

const seconds = (a?: string, b?: string) =>
  a && b ? Math.round((Date.parse(b) - Date.parse(a)) / 1000) : null;

export async function buildReport(inc: Incident, o: ReportOptions): Promise<IncidentReport> {
  const files = inc.files;
  const a = inc.assessment;
  const count = (k: string) => files.filter((f) => f.outcome === k).length;
  return {
    format: "tensorseal-incident-report",
    v: 1,
    generated: o.now().toISOString(),
    incident: {
      id: inc.id,
      scope: inc.scopeText,
      class: inc.class,
      severity: inc.severity,
      reason: inc.reason,
      state: inc.state,
      server: inc.server?.url ?? null,
      openedBy: inc.openedBy,
    },
    timeline: {
      ...inc.times,
      secondsToContain: seconds(inc.times.detected, inc.times.contained),
      secondsToEradicate: seconds(inc.times.detected, inc.times.eradicated),
    },
    actions: inc.actions,
    approvals: inc.actions.flatMap((x) =>
      x.approval
        ? [
            {
              action: x.id,
              approval: x.approval.id,
              state: x.approval.state,
              approvers: x.approval.approvers ?? [],
            },
          ]
        : [],
    ),
    files: {
      resealed: count("resealed"),
      rewrapped: count("rewrapped"),
      unreachable: count("unreachable"),
      list: files,
    },
    exposure: {
      exposed: (a?.files ?? []).filter((f) => f.class === "exposed").map((f) => f.file),
      atRisk: (a?.files ?? []).filter((f) => f.class === "at-risk").map((f) => f.file),
      principals: a?.principals ?? [],
      endpoints: a?.endpoints ?? [],
      artifacts: a?.artifacts ?? [],
      releases: a?.releases.length ?? 0,
    },
    residualRisk: residual(inc),
    forensic: await forensic(inc, o),
  };
}

function residual(inc: Incident): string[] {
  const out: string[] = [];
  const a = inc.assessment;
  const exposed = (a?.files ?? []).filter((f) => f.class === "exposed").length;
  const before = inc.times.contained ?? "containment";
  if (exposed > 0)
    out.push(
      `${exposed} exposed file(s): copies made before ${before} still open with the released file keys; only the current files were resealed`,
    );
  if (inc.scope.kind === "key")
    out.push(
      "whoever holds a compromised version can open any old copy of a header wrapped under it (backups, caches, partner copies)",
    );
  if (!inc.server && inc.scope.kind === "key")
    out.push(
      "keystore backups taken before the destruction still hold the compromised versions (docs/KEYS.md, backups)",
    );
  const unregistered = (a?.releases ?? []).filter((r) => !r.artifact).length;
  if (unregistered > 0)
    out.push(
      `${unregistered} release(s) of unregistered stanzas: the files they opened are not known to the registry`,
    );
  const unreachable = inc.files.filter((f) => f.outcome === "unreachable").length;
  if (unreachable > 0)
    out.push(`${unreachable} file(s) unreachable: still on the compromised key (see files)`);
  const waiting = inc.actions.filter((x) => x.state === "waiting").map((x) => x.id);
  if (waiting.length) out.push(`waiting for approval: ${waiting.join(", ")}`);
  const failed = inc.actions.filter((x) => x.state === "failed").map((x) => x.id);
  if (failed.length) out.push(`failed actions: ${failed.join(", ")}`);
  if (!a) out.push("not assessed: run `tensorseal incident assess`");
  const contained = inc.actions
    .filter((x) => x.id === "contain:principals" && x.state === "done")
    .flatMap((x) => (x.detail?.contained as { principal: string; note?: string }[]) ?? []);
  if (contained.length > 0)
    out.push(
      `contained principals (${contained.map((c) => c.principal).join(", ")}): their service tokens and known client certificates are revoked; reissue credentials to the legitimate workloads`,
    );
  for (const c of contained.filter((x) => x.note)) out.push(`${c.principal}: ${c.note}`);
  if (inc.scope.kind !== "key" && a && a.principals.length > 0 && contained.length === 0)
    out.push(
      "revoke or reissue the credentials of the principals that received keys (`tensorseal service token revoke`)",
    );
  return out;
}

async function forensic(inc: Incident, o: ReportOptions): Promise<IncidentReport["forensic"]> {
  const releases = inc.assessment?.releases ?? [];
  if (!o.client || !inc.server)
    return {
      releases,
      entries: [],
      chain: { verified: false, reason: "local keystore: releases are not audited" },
    };
  const entries: Record<string, unknown>[] = [];
  let chain: ChainResult;
  try {
    for await (const e of queryApi(o.client, { from: inc.times.opened }, 0, 1000))
      entries.push({ seq: e.seq, hash: e.hash, ...(JSON.parse(e.text) as object) });
    const v = await verifyAuditSource(
      apiSource(o.client),
      o.publicKey ? { publicKey: o.publicKey } : {},
    );
    chain = {
      verified: true,
      ok: v.ok,
      entries: v.entries,
      lastSeq: v.lastSeq,
      lastHash: v.lastHash,
      pinned: v.pinned,
      problems: v.problems,
    };
  } catch (e) {
    chain = { verified: false, reason: (e as Error).message };
  }
  return { releases, entries, chain };
}
