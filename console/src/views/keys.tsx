/** Keys: every key with its primary version, states, sensitivity and rotation due date. */
import { useState } from "preact/hooks";
import { api } from "../api";
import { href } from "../route";
import type { Key, SessionInfo } from "../types";
import { ColumnHeads, isAdmin, LoadStatus, useLoad, when } from "../ui";
import { CreateKey } from "./create-key";

export function KeysView({ session }: { session: SessionInfo }) {
  const keys = useLoad(() => api<{ keys: Key[] }>("GET", "/v1/keys"), []);
  const [filter, setFilter] = useState("");
  const shown = (keys.data?.keys ?? []).filter((k) => k.name.includes(filter.trim()));
  return (
    <>
      <h1>Keys</h1>
      {isAdmin(session.roles) && <CreateKey done={keys.reload} />}
      <label for="key-filter">Find a key</label>{" "}
      <input
        id="key-filter"
        type="search"
        value={filter}
        onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
      />
      <LoadStatus r={keys} />
      {keys.data && (
        <table>
          <caption>{shown.length} keys</caption>
          <ColumnHeads names={["Name", "Primary", "Versions", "Sensitivity", "Rotation due"]} />
          <tbody>
            {shown.map((k) => (
              <tr key={k.name}>
                <th scope="row">
                  <a href={href(`keys/${encodeURIComponent(k.name)}`)}>{k.name}</a>
                </th>
                <td>v{k.primaryVersion}</td>
                <td>{k.versions.map((v) => `v${v.version} ${v.state}`).join(", ")}</td>
                <td>{k.sensitivity ?? "—"}</td>
                <td>{when(k.rotationDue)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
