/**
 * The approval queue: each request's operation and parameters, who asked, who approved so far,
 * and (for admins) approve or reject with a comment. The requester sees no vote buttons on
 * their own request: the server refuses self-approval either way.
 */
import { useState } from "preact/hooks";
import { api } from "../api";
import type { Approval, SessionInfo } from "../types";
import { ErrorLine, isAdmin, Outcome, Status, useLoad, when } from "../ui";

type Msg = { ok: boolean; text: string } | null;

export function ApprovalsView({ session }: { session: SessionInfo }) {
  const [state, setState] = useState("pending");
  // Kept here: a request that stops being pending leaves the list, its result stays shown.
  const [msg, setMsg] = useState<Msg>(null);
  const list = useLoad(
    () =>
      api<{ approvals: Approval[] }>(
        "GET",
        `/v1/approvals?limit=100${state ? `&state=${state}` : ""}`,
      ),
    [state],
  );
  return (
    <>
      <h1>Approvals</h1>
      <label for="approval-state">Show</label>{" "}
      <select
        id="approval-state"
        value={state}
        onChange={(e) => setState((e.target as HTMLSelectElement).value)}
      >
        <option value="pending">pending</option>
        <option value="">all</option>
        <option value="executed">executed</option>
        <option value="rejected">rejected</option>
        <option value="expired">expired</option>
      </select>
      <Outcome msg={msg} as="p" />
      <ErrorLine error={list.error} />
      {list.data && list.data.approvals.length === 0 && <Status>No requests.</Status>}
      {list.data?.approvals.map((a) => (
        <Request key={a.id} a={a} session={session} report={setMsg} done={list.reload} />
      ))}
    </>
  );
}

function summary(a: Approval): string {
  const p = a.params ?? {};
  const parts = ["key", "version", "days", "recipient", "principals", "reason"]
    .filter((k) => p[k] !== undefined)
    .map((k) => `${k} ${String(p[k])}`);
  return parts.join(", ");
}

function Request(props: {
  a: Approval;
  session: SessionInfo;
  report: (m: Msg) => void;
  done: () => void;
}) {
  const { a, session, report: setMsg, done } = props;
  const [comment, setComment] = useState("");
  const mine = a.requester === session.principal;
  const vote = (v: "approve" | "reject") => async () => {
    try {
      const body = comment.trim() ? { comment: comment.trim() } : {};
      const r = await api<Approval>("POST", `/v1/approvals/${a.id}/${v}`, body);
      const verb = v === "approve" ? "Approved" : "Rejected";
      setMsg({ ok: true, text: `${verb} ${a.id}: now ${r.state}` });
      done();
    } catch (e) {
      setMsg({ ok: false, text: (e as Error).message });
    }
  };
  const cid = `comment-${a.id}`;
  return (
    <article class="panel" aria-labelledby={`t-${a.id}`} data-testid={`approval-${a.id}`}>
      <h2 id={`t-${a.id}`}>
        {a.operation} — {summary(a)}
      </h2>
      <dl>
        <dt>Request</dt>
        <dd class="mono">{a.id}</dd>
        <dt>Requested by</dt>
        <dd class="mono" data-testid="requester">
          {a.requester}
        </dd>
        <dt>Approvals</dt>
        <dd>
          {a.approvers.length} of {a.required}
          {a.approvers.length > 0 ? `: ${a.approvers.join(", ")}` : ""}
        </dd>
        <dt>State</dt>
        <dd data-testid="state">{a.state}</dd>
        <dt>Expires</dt>
        <dd>{when(a.expires)}</dd>
      </dl>
      {a.state === "pending" && isAdmin(session.roles) && mine && (
        <p class="notice">Your own request: another principal must approve it.</p>
      )}
      {a.state === "pending" && isAdmin(session.roles) && !mine && (
        <div class="vote">
          <label for={cid}>Comment (recorded in the audit log)</label>
          <textarea
            id={cid}
            maxLength={500}
            value={comment}
            onInput={(e) => setComment((e.target as HTMLTextAreaElement).value)}
          />
          <button type="button" onClick={vote("approve")}>
            Approve
          </button>
          <button type="button" class="danger" onClick={vote("reject")}>
            Reject
          </button>
        </div>
      )}
    </article>
  );
}
