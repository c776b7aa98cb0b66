/**
 * Drill history on this service (GET /v1/drills, Cedar `drills:read`): what
 * `tensorseal drill run --server` recorded, newest first, a page at a time.
 */
import { useState } from "preact/hooks";
import { api, query } from "../api";
import type { DrillRun } from "../types";
import { ColumnHeads, LoadStatus, Section, Status, useLoad, when } from "../ui";

const PAGE = 50;

function ms(v: number | null): string {
  return v === null ? "never" : `${v} ms`;
}

export function DrillHistory() {
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const r = useLoad(
    () =>
      api<{ drills: DrillRun[]; nextCursor?: string }>(
        "GET",
        `/v1/drills${query({ limit: PAGE, cursor })}`,
      ),
    [cursor],
  );
  const drills = r.data?.drills ?? [];
  return (
    <Section title="Drill history">
      <p class="hint">
        Recorded by <code>tensorseal drill run --server URL</code> (each scenario's outcome and
        time-to-contain); runs without <code>--server</code> stay in the runner's own{" "}
        <code>tensorseal drill history</code>.
      </p>
      <LoadStatus r={r} />
      {r.data &&
        (drills.length === 0 ? (
          <Status>No drill recorded on this service.</Status>
        ) : (
          <table data-testid="drills-table">
            <ColumnHeads
              names={[
                "When",
                "Scenario",
                "Outcome",
                "Time to detect",
                "Time to contain",
                "Checks",
                "Run by",
              ]}
            />
            <tbody>
              {drills.map((d) => (
                <tr key={d.id} data-testid="drill">
                  <td>{when(d.time)}</td>
                  <td class="mono">{d.scenario}</td>
                  <td class={d.result === "pass" ? "ok" : "error"}>
                    {d.result === "pass"
                      ? "passed"
                      : `failed${d.failed.length ? `: ${d.failed.join(", ")}` : ""}`}
                  </td>
                  <td>{ms(d.detectMs)}</td>
                  <td>{ms(d.containMs)}</td>
                  <td>
                    {d.checks.passed}/{d.checks.total}
                  </td>
                  <td class="mono">{d.recordedBy}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ))}
      {(cursor || r.data?.nextCursor) && (
        <p class="pager">
          {cursor && (
            <button type="button" onClick={() => setCursor(undefined)}>
              Newest
            </button>
          )}
          {r.data?.nextCursor && (
            <button type="button" onClick={() => setCursor(r.data?.nextCursor)}>
              Older
            </button>
          )}
        </p>
      )}
    </Section>
  );
}
