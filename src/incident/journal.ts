/**
 * The step journal: each action is recorded as started before it runs and as done (or failed,
 * or waiting for an approval) after, the record saved atomically each time. A rerun of a step
 * skips actions already done and runs again the ones a crash interrupted: every action checks
 * the present state before it changes anything (disable a version that is enabled, rotate only
 * while the primary is compromised, reseal only files still on the old file key), so running
 * it twice never does it twice.
 */
import { userInfo } from "node:os";
import { isTensorSealError } from "../format/errors.js";
import { saveIncident } from "./store.js";
import type { Action, Incident, StepName } from "./types.js";

/** Who acts: TENSORSEAL_ACTOR, else the operating-system user. */
export function actor(): string {
  const env = process.env.TENSORSEAL_ACTOR;
  if (env && env.length > 0) return env.slice(0, 200);
  try {
    return `user:${userInfo().username}`;
  } catch {
    return `uid:${process.getuid?.() ?? "unknown"}`;
  }
}

export interface Outcome {
  detail?: Record<string, unknown>;
  /** The action waits for an approval: recorded as waiting, the step stops here. */
  approval?: Action["approval"];
  waiting?: boolean;
  /** The action ran but left work undone (files it could not reach): recorded as failed, rerun next time. */
  incomplete?: string;
}

export class StepRunner {
  constructor(
    readonly home: string,
    readonly inc: Incident,
    readonly step: StepName,
    readonly now: () => Date = () => new Date(),
  ) {}

  find(id: string): Action | undefined {
    return this.inc.actions.find((a) => a.step === this.step && a.id === id);
  }

  done(id: string): boolean {
    return this.find(id)?.state === "done";
  }

  save(): Promise<void> {
    return saveIncident(this.home, this.inc);
  }

  /**
   * Runs `fn` as action `id` unless it is done; returns its outcome (the recorded one when it
   * was done before). Failures are recorded and rethrown: the step stops (fail closed).
   */
  async act(
    id: string,
    what: string,
    fn: (prior: Action | undefined) => Promise<Outcome>,
  ): Promise<Outcome> {
    const prior = this.find(id);
    if (prior?.state === "done") return { detail: prior.detail ?? {} };
    const a: Action = prior ?? {
      step: this.step,
      id,
      what,
      state: "started",
      started: this.now().toISOString(),
      actor: actor(),
    };
    if (!prior) this.inc.actions.push(a);
    a.state = "started";
    a.actor = actor();
    delete a.error;
    await this.save();
    try {
      const out = await fn(prior);
      if (out.detail) a.detail = { ...a.detail, ...out.detail };
      if (out.approval) a.approval = out.approval;
      a.state = out.waiting ? "waiting" : out.incomplete ? "failed" : "done";
      if (out.incomplete) a.error = out.incomplete;
      if (!out.waiting) a.finished = this.now().toISOString();
      await this.save();
      return out;
    } catch (e) {
      a.state = "failed";
      a.error = isTensorSealError(e) ? e.message : "internal error";
      a.finished = this.now().toISOString();
      await this.save();
      throw e;
    }
  }

  /** Records an intermediate detail of a running action (saved). */
  async note(id: string, detail: Record<string, unknown>): Promise<void> {
    const a = this.find(id);
    if (!a) return;
    a.detail = { ...a.detail, ...detail };
    await this.save();
  }
}
