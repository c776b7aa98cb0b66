/**
 * One incident (GET /v1/incidents/:id): what it is about, its timeline (opened, the notes in
 * order, closed with the resolution), and for those who may (admins by default; the API
 * decides with `incidents:note` / `incidents:close`) an Add note form and Close with a
 * resolution while it is open.
 */
import { useState } from "preact/hooks";
import { api } from "../api";
import { href } from "../route";
import type { IncidentNote, IncidentScope, ServiceIncident, SessionInfo } from "../types";
import { isAdmin, LoadStatus, Outcome, Section, useLoad, when } from "../ui";

export function scopeLabel(s: IncidentScope): string {
  return `${s.kind}:${s.value}${s.version !== undefined ? `@${s.version}` : ""}`;
}

export function IncidentDetailView({ id, session }: { id: string; session: SessionInfo }) {
  const r = useLoad(
    () =>
      api<{ incident: ServiceIncident; notes: IncidentNote[] }>(
        "GET",
        `/v1/incidents/${encodeURIComponent(id)}`,
      ),
    [id],
  );
  const inc = r.data?.incident;
  const canChange = isAdmin(session.roles) && inc?.state === "open";
  return (
    <>
      <p>
        <a href={href("incidents")}>← Incidents and drills</a>
      </p>
      <h1>Incident {id}</h1>
      <LoadStatus r={r} />
      {inc && r.data && (
        <>
          <dl class="facts">
            <dt>Title</dt>
            <dd data-testid="incident-title">{inc.title}</dd>
            <dt>State</dt>
            <dd data-testid="incident-state">{inc.state}</dd>
            <dt>Severity</dt>
            <dd>{inc.severity}</dd>
            <dt>Scope</dt>
            <dd class="mono">{inc.scope.map(scopeLabel).join(", ") || "—"}</dd>
            <dt>Summary</dt>
            <dd class="pre">{inc.summary}</dd>
          </dl>
          <Section title="Timeline">
            <ol class="timeline" data-testid="timeline">
              <li>
                {when(inc.opened)} — opened by <span class="mono">{inc.openedBy}</span>
              </li>
              {r.data.notes.map((n) => (
                <li key={n.id} data-testid="note">
                  {when(n.at)} — <span class="mono">{n.author}</span>:{" "}
                  <span class="pre">{n.text}</span>
                </li>
              ))}
              {inc.closed && (
                <li data-testid="closed">
                  {when(inc.closed)} — closed by <span class="mono">{inc.closedBy}</span>:{" "}
                  <span class="pre">{inc.resolution}</span>
                </li>
              )}
            </ol>
          </Section>
          {canChange && (
            <>
              <TextAction
                id="note"
                title="Add a note"
                label="Note"
                button="Add note"
                run={(text) =>
                  api("POST", `/v1/incidents/${encodeURIComponent(id)}/notes`, { text }).then(
                    () => "Note added",
                  )
                }
                done={r.reload}
              />
              <TextAction
                id="resolution"
                title="Close the incident"
                label="Resolution"
                button="Close incident"
                run={(resolution) =>
                  api("POST", `/v1/incidents/${encodeURIComponent(id)}/close`, {
                    resolution,
                  }).then(() => "Incident closed")
                }
                done={r.reload}
              />
            </>
          )}
        </>
      )}
    </>
  );
}

/** A text area and a button that sends it; the outcome announced. */
function TextAction(p: {
  id: string;
  title: string;
  label: string;
  button: string;
  run: (text: string) => Promise<string>;
  done: () => void;
}) {
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!text.trim()) return;
    setBusy(true);
    try {
      setMsg({ ok: true, text: await p.run(text.trim()) });
      setText("");
      p.done();
    } catch (err) {
      setMsg({ ok: false, text: (err as Error).message });
    } finally {
      setBusy(false);
    }
  };
  return (
    <Section title={p.title}>
      <form class="stacked" onSubmit={submit} aria-label={p.title}>
        <div class="field">
          <label for={`incident-${p.id}`}>{p.label}</label>
          <textarea
            id={`incident-${p.id}`}
            required
            rows={3}
            maxLength={4000}
            value={text}
            onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
          />
        </div>
        <button type="submit" disabled={busy}>
          {p.button}
        </button>
        <Outcome msg={msg} />
      </form>
    </Section>
  );
}
