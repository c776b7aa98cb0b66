/**
 * Block a principal by hand (admins; incident containment): POST /v1/principals/:id/block with
 * an optional reason, after a confirmation step. Like unblock, no approval: the service's dual
 * control covers destroy, export and policy changes, not blocks (docs/INCIDENTS.md). The API
 * decides (Cedar `principals:block`); a principal cannot block itself (409).
 */
import { useState } from "preact/hooks";
import { api } from "../api";
import { Outcome } from "../ui";
import { ActionButton, ConfirmButtons, useConfirmStep } from "./actions";

export async function blockPrincipal(principal: string, reason: string): Promise<string> {
  await api("POST", `/v1/principals/${encodeURIComponent(principal)}/block`, {
    ...(reason.trim() ? { reason: reason.trim() } : {}),
  });
  return `Blocked ${principal}`;
}

/** A form for any principal id (from the audit, an incident, a report). */
export function BlockForm({ done }: { done: () => void }) {
  const [principal, setPrincipal] = useState("");
  const [reason, setReason] = useState("");
  const { asking, setAsking, busy, msg, setMsg, go } = useConfirmStep();
  const confirm = () =>
    go(
      () => blockPrincipal(principal, reason),
      () => {
        setPrincipal("");
        setReason("");
        done();
      },
    );
  return (
    <form
      class="filters"
      aria-label="Block a principal"
      onSubmit={(e) => {
        e.preventDefault();
        setMsg(null);
        if (principal.trim()) setAsking(true);
      }}
    >
      <div class="field">
        <label for="block-principal">Principal id</label>
        <input
          id="block-principal"
          required
          maxLength={2048}
          placeholder="token:… jwt:… spiffe://…"
          value={principal}
          onInput={(e) => setPrincipal((e.target as HTMLInputElement).value.trim())}
        />
      </div>
      <div class="field">
        <label for="block-reason">Reason (kept in the audit)</label>
        <input
          id="block-reason"
          maxLength={500}
          value={reason}
          onInput={(e) => setReason((e.target as HTMLInputElement).value)}
        />
      </div>
      {!asking ? (
        <button type="submit">Block principal</button>
      ) : (
        <ConfirmButtons
          confirm="Confirm block"
          busy={busy}
          onConfirm={confirm}
          onCancel={() => setAsking(false)}
        >
          <span>Its requests are refused at once, on every replica. </span>
        </ConfirmButtons>
      )}
      <Outcome msg={msg} />
    </form>
  );
}

/** The block button on an alert's row: the alert names the reason. */
export function BlockButton({
  principal,
  reason,
  done,
}: {
  principal: string;
  reason: string;
  done: () => void;
}) {
  return (
    <ActionButton
      label={`Block ${principal}`}
      confirm="Confirm block"
      run={() => blockPrincipal(principal, reason)}
      done={done}
    />
  );
}
