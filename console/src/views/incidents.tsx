/**
 * Incidents and drills. First the incidents recorded on the service (incident-list.tsx: opened
 * here or by `tensorseal incident open --server`; open, follow, close), then what the audit
 * shows of the response: blocks (`incident contain` gives the reason `incident ID`, which
 * groups them here), unblocks, disabled and scheduled-for-destruction key versions, raised
 * minimum versions — GET /v1/audit with an action filter, one request per action, within the
 * chosen window (needs `audit:read`) — and the drill history (drills.tsx).
 */
import { useState } from "preact/hooks";
import { api, query } from "../api";
import { href } from "../route";
import type { AuditEntry, AuditPage, SessionInfo } from "../types";
import { ColumnHeads, LoadStatus, Section, Status, useLoad, WindowPicker, when } from "../ui";
import { DrillHistory } from "./drills";
import { IncidentList } from "./incident-list";

const DAY = 86_400_000;
const WINDOWS: [string, number][] = [
  ["last 7 days", 7 * DAY],
  ["last 30 days", 30 * DAY],
  ["last 90 days", 90 * DAY],
];
const ACTIONS = [
  "principals.block",
  "principals.unblock",
  "keys.disable",
  "keys.schedule-destroy",
  "keys.update",
] as const;
const LIMIT = 200;
const INCIDENT_REASON = /^incident (\S{1,128})$/;

interface Incident {
  id: string;
  opened: string;
  by: string;
  principals: { principal: string; blockedAt: string; lifted: string | null }[];
}

/** Blocks whose reason names an incident, grouped by it; a later unblock lifts a block. */
export function incidentsFrom(blocks: AuditEntry[], unblocks: AuditEntry[]): Incident[] {
  const byId = new Map<string, Incident>();
  for (const b of blocks) {
    const reason = String(b.resource?.reason ?? "");
    const m = INCIDENT_REASON.exec(reason);
    const principal = b.resource?.principal;
    if (!m?.[1] || typeof principal !== "string" || b.outcome !== "allowed") continue;
    const inc = byId.get(m[1]) ?? {
      id: m[1],
      opened: b.ts,
      by: b.principal ?? "—",
      principals: [],
    };
    const lift = unblocks.find(
      (u) => u.outcome === "allowed" && u.seq > b.seq && u.resource?.principal === principal,
    );
    inc.principals.push({ principal, blockedAt: b.ts, lifted: lift?.ts ?? null });
    byId.set(m[1], inc);
  }
  return [...byId.values()].sort((a, b) => b.opened.localeCompare(a.opened));
}

export function IncidentsView({ session }: { session: SessionInfo }) {
  const [win, setWin] = useState(1);
  const from = new Date(Date.now() - (WINDOWS[win]?.[1] ?? 30 * DAY)).toISOString();
  const acts = useLoad(
    () =>
      Promise.all(
        ACTIONS.map((action) =>
          api<AuditPage>("GET", `/v1/audit${query({ action, from, limit: LIMIT })}`),
        ),
      ),
    [win],
  );
  const pages = acts.data;
  const [blocks = [], unblocks = []] = pages?.map((p) => p.entries) ?? [];
  const incidents = pages ? incidentsFrom(blocks, unblocks) : [];
  const timeline = (pages ?? [])
    .flatMap((p) => p.entries)
    .filter((e) => e.outcome === "allowed")
    .sort((a, b) => b.seq - a.seq);
  const truncated = pages?.some((p) => p.more) ?? false;
  return (
    <>
      <h1>Incidents and drills</h1>
      <p class="hint">
        Incidents opened here or by <code>tensorseal incident open</code> with <code>--server</code>
        , with their timeline. The playbook's own journal (assessment, eradication, report) stays
        with the responder's <code>tensorseal incident</code>; its containment and response actions
        are in the audit, below.
      </p>
      <IncidentList session={session} />
      <h2>Response actions in the audit</h2>
      <WindowPicker
        id="incident-window"
        windows={WINDOWS}
        value={win}
        onChange={setWin}
        onRefresh={acts.reload}
      />
      <LoadStatus r={acts} />
      {pages && (
        <>
          <Section title="Incidents with containment on this service">
            {incidents.length === 0 ? (
              <Status>No incident blocked a principal in this window.</Status>
            ) : (
              <table data-testid="incidents-table">
                <ColumnHeads
                  names={["Incident", "First block", "Responder", "Principals blocked"]}
                />
                <tbody>
                  {incidents.map((i) => (
                    <tr key={i.id} data-testid="incident">
                      <td class="mono">{i.id}</td>
                      <td>{when(i.opened)}</td>
                      <td class="mono">{i.by}</td>
                      <td>
                        <ul>
                          {i.principals.map((p) => (
                            <li key={`${p.principal}-${p.blockedAt}`}>
                              <a class="mono" href={href("audit", { principal: p.principal })}>
                                {p.principal}
                              </a>{" "}
                              {p.lifted ? `block lifted ${when(p.lifted)}` : "still blocked"}
                            </li>
                          ))}
                        </ul>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Section>
          <Section title="Response actions">
            {timeline.length === 0 ? (
              <Status>No block, unblock, disable, destroy or key update in this window.</Status>
            ) : (
              <table data-testid="response-table">
                <ColumnHeads names={["Seq", "Time", "Action", "By", "Details"]} />
                <tbody>
                  {timeline.map((e) => (
                    <tr key={e.seq}>
                      <td>{e.seq}</td>
                      <td>{when(e.ts)}</td>
                      <td>{e.action}</td>
                      <td class="mono">{e.principal ?? "—"}</td>
                      <td class="mono small">{e.resource ? JSON.stringify(e.resource) : ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {truncated && (
              <Status>
                More than {LIMIT} entries of one action in this window: narrow it, or search the
                audit view.
              </Status>
            )}
          </Section>
        </>
      )}
      <DrillHistory />
    </>
  );
}
