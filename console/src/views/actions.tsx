/**
 * A button for a change, with a confirmation step: the first press asks, the second calls the
 * API. The result (or the API's refusal) is announced in a live region.
 */
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { Outcome } from "../ui";

/** What a change reports: its result, or the API's refusal. */
export type ChangeMessage = { ok: boolean; text: string };

/**
 * The confirmation step of a change: `asking` once the first press asked, `go(run, done)` on the
 * second calls the API, shows its result (or refusal) through `report` (else `msg`), runs `done`
 * after a success, and closes the step.
 */
export function useConfirmStep(report?: (m: ChangeMessage) => void) {
  const [asking, setAsking] = useState(false);
  const [msg, setMsg] = useState<ChangeMessage | null>(null);
  const [busy, setBusy] = useState(false);
  const go = async (run: () => Promise<string>, done?: () => void) => {
    setBusy(true);
    const show = report ?? setMsg;
    try {
      show({ ok: true, text: await run() });
      done?.();
    } catch (e) {
      show({ ok: false, text: (e as Error).message });
    } finally {
      setBusy(false);
      setAsking(false);
    }
  };
  return { asking, setAsking, busy, msg, setMsg, go };
}

/** The second step: what the change does (`children`), the confirm button and Cancel. */
export function ConfirmButtons(props: {
  confirm: string;
  busy: boolean;
  onConfirm: () => void;
  onCancel: () => void;
  children?: ComponentChildren;
}) {
  return (
    <span>
      {props.children}
      <button type="button" class="danger" disabled={props.busy} onClick={props.onConfirm}>
        {props.confirm}
      </button>
      <button type="button" onClick={props.onCancel}>
        Cancel
      </button>
    </span>
  );
}

export function ActionButton(props: {
  label: string;
  confirm: string;
  run: () => Promise<string>;
  done?: () => void;
  /** Where the result goes when this button may disappear with the change (else shown here). */
  report?: (m: ChangeMessage) => void;
  children?: ComponentChildren;
}) {
  const { asking, setAsking, busy, msg, go } = useConfirmStep(props.report);
  return (
    <span class="action">
      {!asking ? (
        <button type="button" onClick={() => setAsking(true)}>
          {props.label}
        </button>
      ) : (
        <ConfirmButtons
          confirm={props.confirm}
          busy={busy}
          onConfirm={() => go(props.run, props.done)}
          onCancel={() => setAsking(false)}
        >
          {props.children}
        </ConfirmButtons>
      )}
      <Outcome msg={msg} />
    </span>
  );
}
