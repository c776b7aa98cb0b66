/**
 * Alerts (anomaly detection's `alert` audit entries, newest window first) and the blocked
 * principals (auto-block or by hand), with block and unblock for admins.
 */
import { useState } from "preact/hooks";
import { api, query } from "../api";
import { href } from "../route";
import type { AuditPage, Blocked, SessionInfo } from "../types";
import {
  ColumnHeads,
  ErrorLine,
  isAdmin,
  Section,
  Status,
  useLoad,
  WindowPicker,
  when,
} from "../ui";
import { ActionButton } from "./actions";
import { BlockButton, BlockForm } from "./block";

const WINDOWS: [string, number][] = [
  ["last hour", 3600_000],
  ["last 24 hours", 86_400_000],
  ["last 7 days", 7 * 86_400_000],
];

export function AlertsView({ session }: { session: SessionInfo }) {
  const [win, setWin] = useState(1);
  const from = new Date(Date.now() - (WINDOWS[win]?.[1] ?? 86_400_000)).toISOString();
  const alerts = useLoad(
    () => api<AuditPage>("GET", `/v1/audit${query({ outcome: "alert", from, limit: 100 })}`),
    [win],
  );
  const blocked = useLoad(() => api<{ blocked: Blocked[] }>("GET", "/v1/principals/blocked"), []);
  const admin = isAdmin(session.roles);
  const isBlocked = new Set(blocked.data?.blocked.map((b) => b.principal) ?? []);
  return (
    <>
      <h1>Alerts and principals</h1>
      <Section title="Blocked principals">
        <ErrorLine error={blocked.error} />
        {blocked.data?.blocked.length === 0 && <Status>No principal is blocked.</Status>}
        <ul>
          {blocked.data?.blocked.map((b) => (
            <li key={b.principal} data-testid="blocked">
              <span class="mono">{b.principal}</span> since {when(b.since)}: {b.reason}{" "}
              {admin && (
                <ActionButton
                  label={`Unblock ${b.principal}`}
                  confirm="Confirm unblock"
                  run={async () => {
                    await api(
                      "POST",
                      `/v1/principals/${encodeURIComponent(b.principal)}/unblock`,
                      {},
                    );
                    return "Unblocked";
                  }}
                  done={blocked.reload}
                />
              )}
            </li>
          ))}
        </ul>
        {admin && <BlockForm done={blocked.reload} />}
      </Section>
      <Section title="Alerts">
        <WindowPicker
          id="alert-window"
          windows={WINDOWS}
          value={win}
          onChange={setWin}
          onRefresh={alerts.reload}
        />
        <ErrorLine error={alerts.error} />
        {alerts.data?.entries.length === 0 && <Status>No alerts in this window.</Status>}
        {alerts.data && alerts.data.entries.length > 0 && (
          <table data-testid="alerts-table">
            <ColumnHeads
              names={[
                "Time",
                "Kind",
                "Principal",
                "Source",
                "Reason",
                ...(admin ? ["Action"] : []),
              ]}
            />
            <tbody>
              {alerts.data.entries.map((e) => (
                <tr key={e.seq}>
                  <td>{when(e.ts)}</td>
                  <td>{e.action}</td>
                  <td class="mono">
                    {e.principal ? (
                      <a href={href("audit", { principal: e.principal })}>{e.principal}</a>
                    ) : (
                      "—"
                    )}
                  </td>
                  <td class="mono">{e.source}</td>
                  <td>{e.reason ?? ""}</td>
                  {admin && (
                    <td>
                      {e.principal && blocked.data && !isBlocked.has(e.principal) && (
                        <BlockButton
                          principal={e.principal}
                          reason={`${e.action} (audit entry ${e.seq})`}
                          done={blocked.reload}
                        />
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {alerts.data?.more && (
          <Status>More alerts exist in this window: narrow it in the audit view.</Status>
        )}
      </Section>
    </>
  );
}
