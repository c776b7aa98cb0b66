/**
 * The incident record (docs/INCIDENTS.md): what was compromised (the scope), how bad (class and
 * severity), and every action taken, each with its time, actor and outcome. Stored as one JSON
 * document per incident, rewritten atomically after each change (store.ts).
 */

export type ScopeKind = "key" | "principal" | "endpoint" | "artifact";

export interface Scope {
  readonly kind: ScopeKind;
  /** As given: a key name, a principal id, an address, an artifact id. */
  readonly value: string;
  /** key scope: the version named (absent: every version the key had when it was opened). */
  readonly version?: number;
}

export type Severity = "critical" | "high" | "medium";

export type IncidentState = "open" | "contained" | "assessed" | "eradicated" | "closed";

export type StepName = "contain" | "assess" | "eradicate" | "close";

export type ActionState = "started" | "done" | "waiting" | "failed";

/** One recorded action. `id` is unique within the incident: a rerun finds it and resumes. */
export interface Action {
  readonly step: StepName;
  readonly id: string;
  readonly what: string;
  state: ActionState;
  readonly started: string;
  finished?: string;
  actor: string;
  detail?: Record<string, unknown>;
  error?: string;
  /** Dual control on the key service: the approval request this action waits for or ran by. */
  approval?: { id: string; state: string; required?: number; approvers?: string[] };
}

/** A file and why it is in the assessment. */
export interface AssessedFile {
  readonly file: string;
  readonly key: string;
  readonly version: number;
  /** exposed: its file key must be assumed known; at-risk: under the scope's key, not released. */
  readonly class: "exposed" | "at-risk";
  readonly why: string;
  readonly artifact?: string;
  /** The header digest when assessed (a reseal or rewrap changes it). */
  readonly headerDigest: string;
}

/** A release of a file key to someone, from the service audit. */
export interface Release {
  readonly seq: number;
  readonly ts: string;
  readonly action: string;
  readonly principal: string;
  readonly source: string;
  readonly key?: string;
  readonly version?: number;
  readonly artifact?: string;
}

export interface Assessment {
  readonly at: string;
  readonly since?: string;
  readonly files: AssessedFile[];
  readonly releases: Release[];
  readonly principals: string[];
  readonly endpoints: string[];
  readonly artifacts: string[];
  readonly keys: { key: string; versions: number[] }[];
}

export interface FileOutcome {
  readonly file: string;
  readonly outcome: "resealed" | "rewrapped" | "current" | "unreachable";
  readonly oldHeaderDigest?: string;
  readonly newHeaderDigest?: string;
  readonly error?: string;
}

export interface Incident {
  readonly format: "tensorseal-incident";
  readonly v: 1;
  readonly id: string;
  readonly scope: Scope;
  readonly scopeText: string;
  readonly reason: string;
  readonly class: string;
  readonly severity: Severity;
  /** The key service URL and id, or absent for the local keystore. */
  readonly server?: { url: string; id: string };
  /** key scope: the versions treated as compromised, fixed when the incident is opened. */
  readonly compromised: { key: string; versions: number[] }[];
  state: IncidentState;
  readonly times: {
    detected: string;
    opened: string;
    contained?: string;
    assessed?: string;
    eradicated?: string;
    closed?: string;
  };
  readonly openedBy: string;
  actions: Action[];
  assessment?: Assessment;
  files: FileOutcome[];
  closeNote?: string;
}
