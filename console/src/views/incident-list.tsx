/**
 * Incidents recorded on this service (GET /v1/incidents, Cedar `incidents:read`), newest
 * first, a page at a time, each linking to its timeline; admins get the Open form.
 */
import { useState } from "preact/hooks";
import { api, query } from "../api";
import { href } from "../route";
import type { ServiceIncident, SessionInfo } from "../types";
import { ColumnHeads, isAdmin, LoadStatus, Section, Status, useLoad, when } from "../ui";
import { scopeLabel } from "./incident-detail";
import { OpenIncident } from "./incident-open";

const PAGE = 50;

export function IncidentList({ session }: { session: SessionInfo }) {
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1];
  const r = useLoad(
    () =>
      api<{ incidents: ServiceIncident[]; nextCursor?: string }>(
        "GET",
        `/v1/incidents${query({ limit: PAGE, cursor })}`,
      ),
    [cursor],
  );
  const list = r.data?.incidents ?? [];
  return (
    <>
      {isAdmin(session.roles) && (
        <Section title="Open an incident">
          <OpenIncident done={() => (cursors.length ? setCursors([]) : r.reload())} />
        </Section>
      )}
      <Section title="Incidents">
        <LoadStatus r={r} />
        {r.data &&
          (list.length === 0 ? (
            <Status>No incident recorded on this service.</Status>
          ) : (
            <table data-testid="service-incidents">
              <ColumnHeads
                names={["Incident", "Title", "Severity", "State", "Scope", "Opened", "Closed"]}
              />
              <tbody>
                {list.map((i) => (
                  <tr key={i.id} data-testid="service-incident">
                    <td>
                      <a class="mono" href={href(`incidents/${i.id}`)}>
                        {i.id}
                      </a>
                    </td>
                    <td>{i.title}</td>
                    <td>{i.severity}</td>
                    <td data-testid="state">{i.state}</td>
                    <td class="mono small">{i.scope.map(scopeLabel).join(", ")}</td>
                    <td>
                      {when(i.opened)} <span class="mono small">{i.openedBy}</span>
                    </td>
                    <td>{i.closed ? when(i.closed) : "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ))}
        {(cursor || r.data?.nextCursor) && (
          <p class="pager">
            {cursor && (
              <button type="button" onClick={() => setCursors(cursors.slice(0, -1))}>
                Newer
              </button>
            )}
            {r.data?.nextCursor && (
              <button
                type="button"
                onClick={() => setCursors([...cursors, r.data?.nextCursor as string])}
              >
                Older
              </button>
            )}
          </p>
        )}
      </Section>
    </>
  );
}
