/**
 * Time-based checkpoints: besides one every N entries, the head is signed when entries were
 * appended since the newest checkpoint and none was signed for `intervalS` seconds, so an entry
 * waits at most about 1.25 × intervalS for a signature however slowly the log grows. The check
 * runs every intervalS / 4 (at least 1 s); the timer and the clock are injectable for tests.
 */
import type { SignedCheckpoint } from "./chain.js";
import type { AuditLog } from "./log.js";

export const DEFAULT_CHECKPOINT_INTERVAL_S = 60;

/** Calls `tick` every `everyMs`; returns a function that stops it. */
export type CheckpointSchedule = (tick: () => Promise<void>, everyMs: number) => () => void;

export const intervalSchedule: CheckpointSchedule = (tick, everyMs) => {
  const t = setInterval(() => void tick(), everyMs).unref();
  return () => clearInterval(t);
};

export function startTimedCheckpoints(o: {
  log: AuditLog;
  intervalS: number;
  now: () => number;
  schedule?: CheckpointSchedule;
  signed?: (cp: SignedCheckpoint) => void;
  failed: (err: unknown) => void;
}): () => void {
  if (!Number.isFinite(o.intervalS) || o.intervalS < 0)
    throw new Error("the checkpoint interval must be 0 (off) or a number of seconds");
  if (o.intervalS === 0) return () => {};
  const intervalMs = o.intervalS * 1000;
  // A failed tick (database down) is logged; the next tick tries again.
  const tick = () =>
    o.log.checkpointIfDue(o.now(), intervalMs).then(
      (cp) => {
        if (cp) o.signed?.(cp);
      },
      (e) => o.failed(e),
    );
  return (o.schedule ?? intervalSchedule)(tick, Math.max(1000, intervalMs / 4));
}
