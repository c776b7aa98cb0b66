/**
 * Open an incident (admins; Cedar `incidents:open`): title, severity, what it is about (one
 * scope per line, `key:NAME[@VERSION]`, `principal:ID`, `endpoint:ADDR`, `artifact:ID`, as
 * `tensorseal incident open --scope` takes them) and a summary. The API decides and audits.
 */
import { useState } from "preact/hooks";
import { api } from "../api";
import { href } from "../route";
import type { IncidentScope, ServiceIncident } from "../types";
import { Outcome } from "../ui";

const KINDS = ["key", "principal", "endpoint", "artifact"];

/** One scope per line; the first bad line is reported. */
export function parseScopes(text: string): IncidentScope[] | string {
  const out: IncidentScope[] = [];
  for (const line of text.split("\n").map((l) => l.trim())) {
    if (!line) continue;
    const i = line.indexOf(":");
    const kind = line.slice(0, i);
    const value = line.slice(i + 1);
    if (i < 1 || !KINDS.includes(kind) || !value)
      return `"${line}" is not key:NAME[@VERSION], principal:ID, endpoint:ADDR or artifact:ID`;
    const m = kind === "key" ? /^(.+)@([1-9][0-9]{0,8})$/.exec(value) : null;
    out.push(
      m?.[1]
        ? { kind: "key", value: m[1], version: Number(m[2]) }
        : { kind: kind as IncidentScope["kind"], value },
    );
  }
  return out;
}

export function OpenIncident({ done }: { done: () => void }) {
  const [msg, setMsg] = useState<{ ok: boolean; text: string; id?: string } | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const d = new FormData(form);
    const scope = parseScopes(String(d.get("scope") ?? ""));
    if (typeof scope === "string") return setMsg({ ok: false, text: scope });
    try {
      const inc = await api<ServiceIncident>("POST", "/v1/incidents", {
        title: String(d.get("title") ?? "").trim(),
        severity: String(d.get("severity") ?? "high"),
        scope,
        summary: String(d.get("summary") ?? "").trim(),
      });
      setMsg({ ok: true, text: `Opened ${inc.id}`, id: inc.id });
      form.reset();
      done();
    } catch (err) {
      setMsg({ ok: false, text: (err as Error).message });
    }
  };
  return (
    <form class="stacked" onSubmit={submit} aria-label="Open an incident">
      <div class="field">
        <label for="incident-title">Title</label>
        <input id="incident-title" name="title" required maxLength={200} />
      </div>
      <div class="field">
        <label for="incident-severity">Severity</label>
        <select id="incident-severity" name="severity">
          <option value="critical">critical</option>
          <option value="high" selected>
            high
          </option>
          <option value="medium">medium</option>
        </select>
      </div>
      <div class="field">
        <label for="incident-scope">
          Scope (one per line: key:NAME[@VERSION], principal:ID, …)
        </label>
        <textarea id="incident-scope" name="scope" rows={2} maxLength={8000} />
      </div>
      <div class="field">
        <label for="incident-summary">Summary</label>
        <textarea id="incident-summary" name="summary" required rows={3} maxLength={4000} />
      </div>
      <button type="submit">Open incident</button>
      <Outcome msg={msg}>
        {msg?.id && (
          <>
            {" "}
            <a href={href(`incidents/${msg.id}`)}>Follow it</a>
          </>
        )}
      </Outcome>
    </form>
  );
}
