/**
 * Overview: keys due for rotation, pending approvals, alerts of the last 24 hours, blocked
 * principals and the audit chain's last signed checkpoint. Each panel is one API call; a panel
 * the caller may not read says so.
 */
import { api, query } from "../api";
import { href } from "../route";
import type { Approval, AuditPage, Blocked, Key } from "../types";
import { ErrorLine, Section, Status, useLoad, when } from "../ui";

const DAY = 86_400_000;

interface Checkpoints {
  server: string;
  checkpoints: { seq: number; hash: string; ts: string }[];
  every: number;
}

export function OverviewView() {
  const keys = useLoad(() => api<{ keys: Key[] }>("GET", "/v1/keys"), []);
  const approvals = useLoad(
    () => api<{ approvals: Approval[] }>("GET", "/v1/approvals?state=pending&limit=100"),
    [],
  );
  const since = new Date(Date.now() - DAY).toISOString();
  const alerts = useLoad(
    () => api<AuditPage>("GET", `/v1/audit${query({ outcome: "alert", from: since, limit: 100 })}`),
    [],
  );
  const blocked = useLoad(() => api<{ blocked: Blocked[] }>("GET", "/v1/principals/blocked"), []);
  const chain = useLoad(() => api<Checkpoints>("GET", "/v1/audit/checkpoints?limit=1"), []);
  const soon = Date.now() + 7 * DAY;
  const due = (keys.data?.keys ?? []).filter(
    (k) => k.rotationDue && new Date(k.rotationDue).getTime() <= soon,
  );
  const cp = chain.data?.checkpoints[0];
  return (
    <>
      <h1>Overview</h1>
      <div class="grid">
        <Section title="Keys due for rotation">
          <ErrorLine error={keys.error} />
          {keys.data &&
            (due.length === 0 ? (
              <Status>No key is due within 7 days ({keys.data.keys.length} keys).</Status>
            ) : (
              <ul data-testid="due-keys">
                {due.map((k) => (
                  <li key={k.name}>
                    <a href={href(`keys/${encodeURIComponent(k.name)}`)}>{k.name}</a> due{" "}
                    {when(k.rotationDue)}
                  </li>
                ))}
              </ul>
            ))}
        </Section>
        <Section title="Pending approvals">
          <ErrorLine error={approvals.error} />
          {approvals.data && (
            <p>
              <a href={href("approvals")} data-testid="pending-count">
                {approvals.data.approvals.length} pending
              </a>
            </p>
          )}
        </Section>
        <Section title="Alerts (24 hours)">
          <ErrorLine error={alerts.error} />
          {alerts.data && (
            <p>
              <a href={href("alerts")} data-testid="alert-count">
                {alerts.data.entries.length}
                {alerts.data.more ? "+" : ""} alerts
              </a>
            </p>
          )}
        </Section>
        <Section title="Blocked principals">
          <ErrorLine error={blocked.error} />
          {blocked.data && (
            <p>
              <a href={href("alerts")} data-testid="blocked-count">
                {blocked.data.blocked.length} blocked
              </a>
            </p>
          )}
        </Section>
        <Section title="Audit chain">
          <ErrorLine error={chain.error} />
          {chain.data &&
            (cp ? (
              <dl>
                <dt>Last signed checkpoint</dt>
                <dd data-testid="checkpoint-seq">seq {cp.seq}</dd>
                <dt>Signed</dt>
                <dd>{when(cp.ts)}</dd>
                <dt>Head hash</dt>
                <dd class="mono">{cp.hash.slice(0, 16)}…</dd>
                <dt>Server</dt>
                <dd class="mono">{chain.data.server}</dd>
              </dl>
            ) : (
              <Status>No checkpoint signed yet.</Status>
            ))}
          <p class="hint">
            Verify the whole chain offline with <code>tensorseal audit verify --server</code>.
          </p>
        </Section>
      </div>
    </>
  );
}
