/**
 * The artifact inventory: registered files with their key, version, labels and location,
 * searchable by key and one label, paged by cursor; each links to its audit trail (who
 * opened it). A resealed file's lineage is marked: the old artifact "superseded by" the new one
 * (kept, not deleted, so its audit trail stays), the new one "supersedes" the old, so someone
 * following a release finds the current file.
 */
import { useState } from "preact/hooks";
import { api, query } from "../api";
import { href } from "../route";
import type { Artifact } from "../types";
import { ColumnHeads, ErrorLine, Pager, Status, useLoad, when } from "../ui";

export function ArtifactsView({ params }: { params: URLSearchParams }) {
  const key = params.get("key") ?? "";
  const label = params.get("label") ?? "";
  const [cursors, setCursors] = useState<string[]>([""]);
  const cursor = cursors[cursors.length - 1] ?? "";
  const list = useLoad(
    () =>
      api<{ artifacts: Artifact[]; nextCursor?: string }>(
        "GET",
        `/v1/artifacts${query({ key, label, cursor, limit: 50 })}`,
      ),
    [key, label, cursor],
  );
  const nextCursor = list.data?.nextCursor;
  const submit = (e: Event) => {
    e.preventDefault();
    const d = new FormData(e.target as HTMLFormElement);
    const out: Record<string, string> = {};
    for (const f of ["key", "label"]) {
      const v = String(d.get(f) ?? "").trim();
      if (v) out[f] = v;
    }
    setCursors([""]);
    location.hash = href("artifacts", out);
  };
  return (
    <>
      <h1>Artifacts</h1>
      <form class="filters" onSubmit={submit} aria-label="Artifact search">
        <div class="field">
          <label for="art-key">Key</label>
          <input id="art-key" name="key" type="text" value={key} />
        </div>
        <div class="field">
          <label for="art-label">Label (k=v)</label>
          <input id="art-label" name="label" type="text" value={label} />
        </div>
        <button type="submit">Search</button>
      </form>
      <ErrorLine error={list.error} />
      {list.data?.artifacts.length === 0 && <Status>No artifacts.</Status>}
      {list.data && list.data.artifacts.length > 0 && (
        <table data-testid="artifacts-table">
          <ColumnHeads
            names={["Artifact", "Key", "Version", "Labels", "Location", "Registered", "Lineage"]}
          />
          <tbody>
            {list.data.artifacts.map((a) => (
              <tr key={a.id} class={a.supersededBy ? "superseded" : undefined}>
                <th scope="row" class="mono">
                  <a href={href("audit", { artifact: a.id })}>{a.id}</a>
                </th>
                <td>{a.key}</td>
                <td>v{a.version}</td>
                <td>
                  {Object.entries(a.labels)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(", ")}
                </td>
                <td class="mono">{a.location ?? "—"}</td>
                <td>{when(a.created)}</td>
                <td>
                  <Lineage a={a} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager
        previous={cursors.length < 2 ? undefined : () => setCursors(cursors.slice(0, -1))}
        next={nextCursor ? () => setCursors([...cursors, nextCursor]) : undefined}
      />
    </>
  );
}

/** The reseal lineage: each id links to that artifact's audit trail (its registration, its location). */
function Lineage({ a }: { a: Artifact }) {
  if (!a.supersedes && !a.supersededBy) return <>—</>;
  return (
    <>
      {a.supersededBy && (
        <span class="notice" data-testid="superseded-by">
          superseded by{" "}
          <a class="mono" href={href("audit", { artifact: a.supersededBy })}>
            {a.supersededBy}
          </a>
          {a.superseded ? ` (${when(a.superseded)})` : ""}
        </span>
      )}
      {a.supersedes && a.supersededBy && <br />}
      {a.supersedes && (
        <span data-testid="supersedes">
          supersedes{" "}
          <a class="mono" href={href("audit", { artifact: a.supersedes })}>
            {a.supersedes}
          </a>
        </span>
      )}
    </>
  );
}
