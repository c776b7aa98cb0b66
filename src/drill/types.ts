/**
 * What a drill scenario is and what it reports. A scenario plays one breach against a private
 * sandbox (sandbox.ts), records checks (each an assertion that the defence held), and marks
 * the moments the breach happened, was detected and was contained; the runner turns those
 * into pass/fail and time-to-detect / time-to-contain.
 */
import type { Sandbox } from "./sandbox.js";

export interface DrillCheck {
  readonly name: string;
  readonly ok: boolean;
  /** What was seen (never a secret: no key, token or plaintext). */
  readonly detail?: string;
}

export interface DrillContext {
  readonly sandbox: Sandbox;
  /**
   * Defences switched off on purpose (tests: a drill must FAIL without its defence). Names are
   * the scenario's own `weakenings`; empty in a real drill.
   */
  readonly weakened: ReadonlySet<string>;
  /** Records one assertion; a false one makes the drill fail (the scenario goes on). */
  check(name: string, ok: boolean, detail?: string): boolean;
  /** The breach happens now: time-to-detect and time-to-contain count from here. */
  breach(): void;
  /** The defence noticed (an alert, a refusal naming the problem, a verify failure). */
  detected(): void;
  /** The damage is stopped (the principal blocked, the key version refused, files resealed...). */
  contained(): void;
}

export interface Scenario {
  /** Stable id used on the command line and in the history (`stolen-version`). */
  readonly name: string;
  /** One line: the breach and the defence. */
  readonly summary: string;
  /** Defences a test may switch off to see the drill FAIL (name: what it removes). */
  readonly weakenings: Readonly<Record<string, string>>;
  run(ctx: DrillContext): Promise<void>;
}

export type DrillResult = "pass" | "fail";

export interface ScenarioReport {
  readonly scenario: string;
  readonly result: DrillResult;
  /** Milliseconds from the breach to detection / containment; null when it never happened. */
  readonly detectMs: number | null;
  readonly containMs: number | null;
  /** Wall time of the whole scenario, sandbox included. */
  readonly durationMs: number;
  readonly checks: DrillCheck[];
  /** An unexpected error that ended the scenario (it fails). */
  readonly error?: string;
  /** "sqlite" or "postgres". */
  readonly database: string;
  readonly weakened?: string[];
}
