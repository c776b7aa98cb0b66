/**
 * What `tensorseal report` gives an auditor for a time window: the inventory, every key release
 * grouped by key, principal and artifact, denied attempts, approvals with who approved, rotations
 * against schedule, doctor findings, drills, and whether the audit chain verifies — with the
 * signed checkpoint it rests on. Names and counts only: no key, token or plaintext byte.
 */
import type { Finding } from "../doctor/findings.js";
import type { Inventory } from "../inventory/model.js";

export interface Count {
  readonly name: string;
  readonly count: number;
  readonly last: string;
}

export interface AuditLine {
  readonly seq: number;
  readonly ts: string;
  readonly action: string;
  readonly principal: string | null;
  readonly detail: string;
}

export interface ApprovalLine {
  readonly id: string;
  readonly operation: string;
  readonly summary: string;
  readonly requester: string;
  readonly approvers: readonly string[];
  readonly state: string;
  readonly requested: string;
  readonly updated: string;
}

export interface RotationLine {
  readonly key: string;
  readonly source: string;
  readonly primaryVersion: number | null;
  readonly due: string | null;
  readonly overdue: boolean;
  /** Rotations the audit recorded for this key in the window. */
  readonly rotatedInWindow: readonly string[];
}

export interface ChainStatus {
  readonly ok: boolean;
  readonly entries: number;
  readonly checkpoints: number;
  readonly lastSeq: number;
  readonly unsigned: number;
  readonly publicKey: string;
  /** The public key was given by the auditor (--public-key), not read from the source. */
  readonly pinned: boolean;
  readonly problems: readonly string[];
}

export interface DrillLine {
  readonly scenario: string;
  readonly result: string;
  readonly at: string;
  readonly detail: string;
}

export interface ReportData {
  readonly generated: string;
  readonly window: { readonly since: string; readonly until: string };
  /** Where the audit was read: a database URL without credentials, or the server URL. */
  readonly auditSource: string | null;
  readonly inventory: Inventory;
  readonly releases: {
    readonly total: number;
    readonly byKey: readonly Count[];
    readonly byPrincipal: readonly Count[];
    readonly byArtifact: readonly Count[];
  } | null;
  readonly denied: { readonly total: number; readonly shown: readonly AuditLine[] } | null;
  readonly approvals: readonly ApprovalLine[] | null;
  readonly rotations: readonly RotationLine[];
  readonly findings: readonly Finding[];
  readonly drills: readonly DrillLine[] | null;
  readonly chain: ChainStatus | null;
  readonly notes: readonly string[];
}
