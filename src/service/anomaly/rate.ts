/**
 * Per-principal release rate against an exponentially weighted baseline, in per-minute
 * windows. State lives in this replica's memory: it is cheap on the hot path (no I/O), and a
 * ratio test works on each replica's share of the traffic as well as on the whole (see
 * docs/SERVICE.md for what that costs: per-replica minimum, warm-up again after a restart).
 */
import type { AnomalySettings } from "./options.js";

const MINUTE = 60_000;
/** Principals tracked at once; the least recently active one is dropped beyond this. */
const MAX_PRINCIPALS = 100_000;

interface State {
  minute: number;
  count: number;
  baseline: number;
  /** Completed minutes of history (idle ones included). */
  history: number;
  /** The minute that already alerted (one alert per principal per window). */
  alerted: number;
}

export interface RateAlert {
  readonly windowStart: string;
  readonly windowCount: number;
  readonly baseline: number;
  readonly factor: number;
  readonly minRate: number;
}

export class RateTracker {
  private readonly states = new Map<string, State>();

  constructor(private readonly s: AnomalySettings) {}

  /** Counts `n` released keys at `now` (Unix ms); an alert the first time the window crosses. */
  record(principal: string, n: number, now: number): RateAlert | null {
    const minute = Math.floor(now / MINUTE);
    let st = this.states.get(principal);
    if (st)
      this.states.delete(principal); // re-inserted below: Map order = recency
    else {
      if (this.states.size >= MAX_PRINCIPALS)
        this.states.delete(this.states.keys().next().value as string);
      st = { minute, count: 0, baseline: 0, history: 0, alerted: -1 };
    }
    this.states.set(principal, st);
    if (minute > st.minute) this.roll(st, minute);
    st.count += n;
    const threshold = this.s.rateFactor * st.baseline;
    if (
      st.history < this.s.warmupMinutes ||
      st.alerted === minute ||
      st.count < this.s.minRate ||
      st.count <= threshold
    )
      return null;
    st.alerted = minute;
    return {
      windowStart: new Date(minute * MINUTE).toISOString(),
      windowCount: st.count,
      baseline: Math.round(st.baseline * 100) / 100,
      factor: this.s.rateFactor,
      minRate: this.s.minRate,
    };
  }

  /** After an unblock: the window that caused the alert starts over (the baseline stays). */
  resetWindow(principal: string): void {
    const st = this.states.get(principal);
    if (st) st.count = 0;
  }

  /** Folds the finished minute into the baseline, then the idle minutes as zeros. */
  private roll(st: State, minute: number): void {
    const a = this.s.alpha;
    // The first completed minute seeds the baseline, so warm-up does not start from zero.
    st.baseline = st.history === 0 ? st.count : st.baseline + a * (st.count - st.baseline);
    const idle = minute - st.minute - 1;
    if (idle > 0) st.baseline *= (1 - a) ** idle;
    st.history += minute - st.minute;
    st.minute = minute;
    st.count = 0;
  }
}
