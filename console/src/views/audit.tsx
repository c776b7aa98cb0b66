/**
 * The audit timeline: the service's paged GET /v1/audit with its filters (key, principal,
 * artifact, action, outcome, time range). One page at a time (server-side paging by seq); the
 * filters live in the URL, so a link can name a search.
 */
import { useState } from "preact/hooks";
import { api, query } from "../api";
import { href } from "../route";
import type { AuditEntry, AuditPage } from "../types";
import { ColumnHeads, LoadStatus, Pager, useLoad, when } from "../ui";

const FIELDS = ["key", "principal", "artifact", "action", "outcome", "from", "until"] as const;
type Field = (typeof FIELDS)[number];
const PAGE = 50;

export function AuditView({ params }: { params: URLSearchParams }) {
  const filter: Partial<Record<Field, string>> = {};
  for (const f of FIELDS) {
    const v = params.get(f);
    if (v) filter[f] = v;
  }
  const key = JSON.stringify(filter);
  // Pages start after these seqs: [0, next of page 1, ...]; going back pops.
  const [starts, setStarts] = useState<number[]>([0]);
  const [forFilter, setForFilter] = useState(key);
  if (forFilter !== key) {
    setForFilter(key);
    setStarts([0]);
  }
  const since = starts[starts.length - 1] ?? 0;
  const page = useLoad(
    () => api<AuditPage>("GET", `/v1/audit${query({ ...filter, since, limit: PAGE })}`),
    [key, since],
  );
  return (
    <>
      <h1>Audit</h1>
      <FilterForm filter={filter} />
      <LoadStatus r={page} />
      {page.data && (
        <>
          <table data-testid="audit-table">
            <caption>
              Entries after seq {since} ({page.data.entries.length} shown
              {page.data.more ? ", more after" : ""})
            </caption>
            <ColumnHeads
              names={["Seq", "Time", "Action", "Outcome", "Principal", "Source", "Details"]}
            />
            <tbody>
              {page.data.entries.map((e) => (
                <Row key={e.seq} e={e} />
              ))}
            </tbody>
          </table>
          <Pager
            previous={starts.length < 2 ? undefined : () => setStarts(starts.slice(0, -1))}
            next={page.data.more ? () => setStarts([...starts, page.data!.nextSince]) : undefined}
          >
            <button type="button" onClick={() => download(page.data!.entries, since)}>
              Download this page (JSON Lines)
            </button>
          </Pager>
        </>
      )}
    </>
  );
}

function Row({ e }: { e: AuditEntry }) {
  return (
    <tr class={`outcome-${e.outcome}`}>
      <td>{e.seq}</td>
      <td>{when(e.ts)}</td>
      <td>{e.action}</td>
      <td>{e.outcome}</td>
      <td class="mono">{e.principal ?? "—"}</td>
      <td class="mono">{e.source}</td>
      <td class="mono small">
        {e.resource ? JSON.stringify(e.resource) : ""}
        {e.reason ? ` — ${e.reason}` : ""}
      </td>
    </tr>
  );
}

/** The page's entries as they came from the API, one JSON object per line. */
function download(entries: AuditEntry[], since: number): void {
  const blob = new Blob(
    entries.map((e) => `${JSON.stringify(e)}\n`),
    { type: "application/x-ndjson" },
  );
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = `tensorseal-audit-after-${since}.jsonl`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Time inputs are local; the API takes ISO 8601 (UTC). */
function toIso(local: string): string {
  if (!local) return "";
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

function FilterForm({ filter }: { filter: Partial<Record<Field, string>> }) {
  const submit = (e: Event) => {
    e.preventDefault();
    const data = new FormData(e.target as HTMLFormElement);
    const out: Record<string, string> = {};
    for (const f of FIELDS) {
      let v = String(data.get(f) ?? "").trim();
      if (f === "from" || f === "until") v = toIso(v);
      if (v) out[f] = v;
    }
    location.hash = href("audit", out);
  };
  const text = (f: Field, label: string) => (
    <div class="field">
      <label for={`audit-${f}`}>{label}</label>
      <input id={`audit-${f}`} name={f} type="text" value={filter[f] ?? ""} />
    </div>
  );
  return (
    <form class="filters" onSubmit={submit} aria-label="Audit filters">
      {text("key", "Key")}
      {text("principal", "Principal")}
      {text("artifact", "Artifact")}
      {text("action", "Action")}
      <div class="field">
        <label for="audit-outcome">Outcome</label>
        <select id="audit-outcome" name="outcome" value={filter.outcome ?? ""}>
          <option value="">any</option>
          <option value="allowed">allowed</option>
          <option value="denied">denied</option>
          <option value="error">error</option>
          <option value="alert">alert</option>
        </select>
      </div>
      <div class="field">
        <label for="audit-from">From</label>
        <input id="audit-from" name="from" type="datetime-local" step="1" />
      </div>
      <div class="field">
        <label for="audit-until">Until</label>
        <input id="audit-until" name="until" type="datetime-local" step="1" />
      </div>
      <button type="submit">Search</button>
      <a href={href("audit")}>Clear</a>
    </form>
  );
}
