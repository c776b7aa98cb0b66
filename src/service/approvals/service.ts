/**
 * Dual control: an operation that needs M approvals is a request that waits until M distinct
 * principals have approved it — the requester counts as the first (M = 1 means the requester
 * alone: dual control off), and a principal approves at most once. The M-th approval executes
 * the operation inside that HTTP request: a conditional UPDATE pending → executing (only while
 * unexpired) picks exactly one executor even when replicas approve at once; its audit entry is
 * committed before the operation runs (no audit, no execution); the outcome is then stored
 * (executed, or failed with the reason). A rejected or expired request never executes. A
 * process that dies between claim and outcome leaves the request `executing`: it is never run
 * again (fail closed), and the audit shows how far it got.
 */
import { randomBytes } from "node:crypto";
import type { AuditRecord } from "../audit/chain.js";
import { ServiceError } from "../errors.js";
import type { WebhookOptions } from "../webhook.js";
import type { ApprovalEvent, ApprovalEventKind } from "./events.js";
import {
  type Executed,
  OPERATION,
  OPERATIONS,
  type OperationDeps,
  type OperationName,
  type Params,
} from "./operations.js";
import type { ApprovalRepo, ApprovalRow } from "./repo.js";

export const DEFAULT_APPROVAL_TTL_MS = 24 * 3_600_000;
export const MAX_APPROVALS = 10;

export interface ApprovalOptions {
  /** Approvals needed per operation, 1..10 (default 1: the requester alone). */
  readonly required?: Partial<Record<OperationName, number>>;
  /** How long a request waits for its approvals (ms, default 24 h). */
  readonly ttlMs?: number;
  /** Where approval events go (events.ts); the server builds the sender. */
  readonly webhook?: WebhookOptions;
}

/** Parses `destroy=2,export=2,policy=3` (`serve --approvals`). */
export function parseApprovalSpec(spec: string): Partial<Record<OperationName, number>> {
  const out: Partial<Record<OperationName, number>> = {};
  for (const part of spec.split(",").filter((p) => p.trim() !== "")) {
    const m = /^\s*([a-z]+)\s*=\s*(\d{1,2})\s*$/.exec(part);
    const op = m?.[1] as OperationName | undefined;
    const n = Number(m?.[2]);
    if (!m || !op || !OPERATIONS.includes(op) || n < 1 || n > MAX_APPROVALS)
      throw new Error(
        `--approvals expects OP=M,... with OP one of ${OPERATIONS.join(", ")} and M 1..${MAX_APPROVALS}, got ${JSON.stringify(part)}`,
      );
    out[op] = n;
  }
  return out;
}

/** Who is acting, and where the request came from (for the audit entries written here). */
export interface Actor {
  readonly principal: string;
  readonly source: string;
  readonly requestId: string;
}

export interface ApprovalView {
  id: string;
  operation: string;
  params: Params;
  requester: string;
  required: number;
  approvers: string[];
  state: string;
  created: string;
  expires: string;
  updated: string;
  outcome?: Params;
  /** The requester's one-time result (export), present once. */
  result?: Params;
  resultAvailable: boolean;
}

export class ApprovalService {
  private readonly required: Record<OperationName, number>;
  private readonly ttlMs: number;

  constructor(
    private readonly repo: ApprovalRepo,
    private readonly deps: OperationDeps,
    private readonly audit: (r: AuditRecord) => Promise<void>,
    private readonly now: () => number,
    o: ApprovalOptions = {},
    /** Hears of requests that need more than one approval (events.ts); must not throw. */
    private readonly notify: ((e: ApprovalEvent) => void) | null = null,
  ) {
    this.required = { destroy: 1, export: 1, policy: 1, custody: 1, contain: 1 };
    for (const op of OPERATIONS) {
      const n = o.required?.[op] ?? 1;
      if (!Number.isInteger(n) || n < 1 || n > MAX_APPROVALS)
        throw new Error(`approvals for ${op} must be 1..${MAX_APPROVALS}, got ${n}`);
      this.required[op] = n;
    }
    this.ttlMs = o.ttlMs ?? DEFAULT_APPROVAL_TTL_MS;
    if (!Number.isInteger(this.ttlMs) || this.ttlMs < 1000)
      throw new Error("the approval lifetime must be at least 1 s");
  }

  requiredFor(op: OperationName): number {
    return this.required[op];
  }

  /**
   * Approvals this request needs: the configured M, raised to 2 for a destroy or export of a
   * key whose tier requires dual control (service/tiers.ts), whatever --approvals says.
   */
  async requiredForRequest(op: OperationName, params: Params): Promise<number> {
    const m = this.required[op];
    if ((op !== "destroy" && op !== "export") || typeof params.key !== "string") return m;
    const attrs = await this.deps.keys.attributes(params.key);
    return this.deps.keys.tiers.dualControl(attrs?.sensitivity) ? Math.max(m, 2) : m;
  }

  operation(op: string) {
    if (!OPERATIONS.includes(op as OperationName))
      throw new ServiceError(400, "bad_request", `unknown operation ${op}`);
    return OPERATION[op as OperationName];
  }

  /** Validates what is asked; the caller authorizes the operation's action on the result. */
  prepare(op: OperationName, input: Params, requester?: string): Promise<Params> {
    return this.operation(op).prepare(input, this.deps, requester);
  }

  /** Records a pending request (the requester's approval included); with M = 1 it executes now. */
  async request(op: OperationName, params: Params, who: Actor): Promise<ApprovalView> {
    const now = this.now();
    const at = new Date(now).toISOString();
    const row: ApprovalRow = {
      id: `apr_${randomBytes(12).toString("hex")}`,
      operation: op,
      params: JSON.stringify(params),
      requester: who.principal,
      required: await this.requiredForRequest(op, params),
      state: "pending",
      created: at,
      expires: now + this.ttlMs,
      updated: at,
      outcome: null,
      result: null,
    };
    await this.repo.insert(row, { principal: who.principal, vote: "approve", at });
    if (row.required <= 1) await this.execute(row, who);
    else await this.emit("requested", row, who.principal);
    return this.show(row.id, who.principal, false);
  }

  /** One more approval; the M-th executes. 409 for a second vote, the requester, or a closed request. */
  async approve(id: string, who: Actor): Promise<ApprovalView & { executed: boolean }> {
    const row = await this.open(id);
    if (row.requester === who.principal)
      throw new ServiceError(
        409,
        "conflict",
        `approval ${id}: the requester's own approval is already counted; another principal must approve`,
      );
    const at = new Date(this.now()).toISOString();
    if (!(await this.repo.vote(id, { principal: who.principal, vote: "approve", at })))
      throw new ServiceError(
        409,
        "conflict",
        `approval ${id}: ${who.principal} already voted; approvals must come from distinct principals`,
      );
    const approvers = await this.approvers(id);
    const executed = approvers.length >= row.required && (await this.execute(row, who));
    if (approvers.length < row.required) await this.emit("approved", row, who.principal);
    return { ...(await this.show(id, who.principal, false)), executed };
  }

  /** Any principal who may approve may reject (the requester: withdraw); it never executes then. */
  async reject(id: string, who: Actor): Promise<ApprovalView> {
    await this.open(id);
    const now = this.now();
    const at = new Date(now).toISOString();
    await this.repo.vote(id, { principal: who.principal, vote: "reject", at });
    const outcome = JSON.stringify({ rejectedBy: who.principal });
    if (!(await this.repo.transition(id, ["pending"], "rejected", at, { aliveAt: now, outcome }))) {
      const r = await this.repo.get(id);
      throw new ServiceError(409, "conflict", `approval ${id} is ${r?.state}: nothing to reject`);
    }
    const row = await this.repo.get(id);
    if (row) await this.emit("rejected", row, who.principal);
    return this.show(id, who.principal, false);
  }

  /** One request; its one-time result is handed to the requester once when `take`. */
  async show(id: string, viewer: string, take: boolean): Promise<ApprovalView> {
    const row = await this.repo.get(id);
    if (!row) throw new ServiceError(404, "not_found", `no approval request ${id}`);
    let result: Params | undefined;
    if (take && row.requester === viewer && row.result) {
      const r = await this.repo.takeResult(id);
      if (r) result = JSON.parse(r) as Params;
    }
    return this.view(row, await this.repo.votes(id), true, result);
  }

  async list(state: string | undefined, limit: number): Promise<ApprovalView[]> {
    const rows = await this.repo.list(state, limit);
    return Promise.all(rows.map(async (r) => this.view(r, await this.repo.votes(r.id), false)));
  }

  /** Marks pending requests past their lifetime expired, each with an audit entry. */
  async expireDue(): Promise<void> {
    const now = this.now();
    for (const r of await this.repo.due(now)) {
      if (!(await this.repo.transition(r.id, ["pending"], "expired", new Date(now).toISOString())))
        continue;
      await this.audit({
        action: "approvals.expire",
        outcome: "allowed",
        status: 200,
        principal: "system:approvals",
        source: "server",
        requestId: `expire-${r.id}`,
        resource: {
          approval: r.id,
          operation: r.operation,
          requester: r.requester,
          approvers: await this.approvers(r.id),
        },
      });
      await this.emit("expired", r, "system:approvals");
    }
  }

  /** The request, still pending and unexpired (expiring it now if its time is up), or 404/409. */
  private async open(id: string): Promise<ApprovalRow> {
    await this.expireDue();
    const row = await this.repo.get(id);
    if (!row) throw new ServiceError(404, "not_found", `no approval request ${id}`);
    if (row.state !== "pending")
      throw new ServiceError(
        409,
        "conflict",
        `approval ${id} is ${row.state}: only a pending request can be approved or rejected`,
      );
    return row;
  }

  private async approvers(id: string): Promise<string[]> {
    return (await this.repo.votes(id)).filter((v) => v.vote === "approve").map((v) => v.principal);
  }

  /** Claims the request (one executor wins), audits, runs it and stores the outcome. */
  private async execute(row: ApprovalRow, who: Actor): Promise<boolean> {
    const now = this.now();
    const at = () => new Date(this.now()).toISOString();
    if (!(await this.repo.transition(row.id, ["pending"], "executing", at(), { aliveAt: now })))
      return false;
    const params = JSON.parse(row.params) as Params;
    const op = OPERATION[row.operation as OperationName];
    try {
      await this.audit({
        action: "approvals.execute",
        outcome: "allowed",
        status: 200,
        principal: who.principal,
        source: who.source,
        requestId: who.requestId,
        resource: {
          approval: row.id,
          operation: row.operation,
          requester: row.requester,
          approvers: await this.approvers(row.id),
          ...op.summary(params),
        },
      });
    } catch {
      // Not audited, not executed: back to pending so a later approval can retry.
      await this.repo.transition(row.id, ["executing"], "pending", at());
      throw new ServiceError(
        503,
        "audit_unavailable",
        `the audit log is unavailable: approval ${row.id} was not executed`,
      );
    }
    let done: Executed;
    try {
      done = await op.execute(params, row.id, this.deps);
    } catch (e) {
      const why = e instanceof ServiceError ? e.message : "internal error";
      await this.repo.transition(row.id, ["executing"], "failed", at(), {
        outcome: JSON.stringify({ error: why }),
      });
      await this.emit("failed", row, who.principal);
      throw e;
    }
    await this.repo.transition(row.id, ["executing"], "executed", at(), {
      outcome: JSON.stringify(done.outcome),
      result: done.result ? JSON.stringify(done.result) : null,
    });
    await this.emit("executed", row, who.principal);
    return true;
  }

  /**
   * Tells `notify` (a webhook) where a request that needs more than one approval stands now.
   * Best effort: reading the request back may fail; the request itself never does because of it.
   */
  private async emit(kind: ApprovalEventKind, row: ApprovalRow, by: string): Promise<void> {
    if (!this.notify || row.required <= 1) return;
    try {
      const current = await this.repo.get(row.id);
      if (current) {
        const votes = await this.repo.votes(row.id);
        this.notify({ kind, approval: this.view(current, votes, false), by });
      }
    } catch {
      // The audit holds what happened; an event that cannot be built is skipped.
    }
  }

  private view(
    row: ApprovalRow,
    votes: { principal: string; vote: string }[],
    full: boolean,
    result?: Params,
  ): ApprovalView {
    const params = JSON.parse(row.params) as Params;
    const op = OPERATION[row.operation as OperationName];
    return {
      id: row.id,
      operation: row.operation,
      params: full ? params : op.summary(params),
      requester: row.requester,
      required: row.required,
      approvers: votes.filter((v) => v.vote === "approve").map((v) => v.principal),
      state: row.state,
      created: row.created,
      expires: new Date(row.expires).toISOString(),
      updated: row.updated,
      ...(row.outcome ? { outcome: JSON.parse(row.outcome) as Params } : {}),
      ...(result ? { result } : {}),
      resultAvailable: row.result !== null,
    };
  }
}
