/**
 * A button for a change, with a confirmation step: the first press asks, the second calls the
 * API. The result (or the API's refusal) is announced in a live region.
 */
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { Outcome } from "../ui";

export function ActionButton(props: {
  label: string;
  confirm: string;
  run: () => Promise<string>;
  done?: () => void;
  /** Where the result goes when this button may disappear with the change (else shown here). */
  report?: (m: { ok: boolean; text: string }) => void;
  children?: ComponentChildren;
}) {
  const [asking, setAsking] = useState(false);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const go = async () => {
    setBusy(true);
    const show = props.report ?? setMsg;
    try {
      show({ ok: true, text: await props.run() });
      props.done?.();
    } catch (e) {
      show({ ok: false, text: (e as Error).message });
    } finally {
      setBusy(false);
      setAsking(false);
    }
  };
  return (
    <span class="action">
      {!asking ? (
        <button type="button" onClick={() => setAsking(true)}>
          {props.label}
        </button>
      ) : (
        <span>
          {props.children}
          <button type="button" class="danger" disabled={busy} onClick={go}>
            {props.confirm}
          </button>
          <button type="button" onClick={() => setAsking(false)}>
            Cancel
          </button>
        </span>
      )}
      <Outcome msg={msg} />
    </span>
  );
}
