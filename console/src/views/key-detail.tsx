/**
 * One key: its versions and states, minimum versions, rotation period and due date, labels,
 * the registered files on each version, and (for admins) rotate, disable/enable and schedule
 * destroy. Under dual control, schedule destroy answers with an approval request instead.
 */
import { useState } from "preact/hooks";
import { api } from "../api";
import { href } from "../route";
import type { Artifact, Key, KeyVersion, SessionInfo } from "../types";
import {
  ColumnHeads,
  ErrorLine,
  isAdmin,
  LoadStatus,
  Outcome,
  Section,
  useLoad,
  when,
} from "../ui";
import { ActionButton } from "./actions";

type Msg = { ok: boolean; text: string } | null;

interface Destroy202 {
  approval: string;
  required: number;
  approvers: string[];
}

export function KeyDetailView({ name, session }: { name: string; session: SessionInfo }) {
  const path = `/v1/keys/${encodeURIComponent(name)}`;
  const key = useLoad(() => api<Key>("GET", path), [name]);
  const files = useLoad(
    () =>
      api<{ artifacts: Artifact[]; nextCursor?: string }>(
        "GET",
        `/v1/artifacts?key=${encodeURIComponent(name)}&limit=1000`,
      ),
    [name],
  );
  const admin = isAdmin(session.roles);
  // Version actions report here: their buttons change with the version's state.
  const [msg, setMsg] = useState<Msg>(null);
  const k = key.data;
  const perVersion = new Map<number, number>();
  for (const a of files.data?.artifacts ?? [])
    perVersion.set(a.version, (perVersion.get(a.version) ?? 0) + 1);
  return (
    <>
      <h1>Key {name}</h1>
      <p>
        <a href={href("keys")}>All keys</a> ·{" "}
        <a href={href("audit", { key: name })}>Audit entries for this key</a>
      </p>
      <LoadStatus r={key} />
      {k && (
        <>
          <Section title="Properties">
            <dl>
              <dt>Primary version</dt>
              <dd data-testid="primary">v{k.primaryVersion}</dd>
              <dt>Minimum decryption version</dt>
              <dd>{k.minDecryptionVersion ?? 1}</dd>
              <dt>Minimum encryption version</dt>
              <dd>{k.minEncryptionVersion ?? 1}</dd>
              <dt>Sensitivity</dt>
              <dd>{k.sensitivity ?? "—"}</dd>
              <dt>Labels</dt>
              <dd>
                {Object.entries(k.labels ?? {})
                  .map(([a, b]) => `${a}=${b}`)
                  .join(", ") || "—"}
              </dd>
              <dt>Rotation period</dt>
              <dd>{k.rotationPeriod ? `${Math.round(k.rotationPeriod / 86400)} days` : "none"}</dd>
              <dt>Rotation due</dt>
              <dd>{when(k.rotationDue)}</dd>
              <dt>Created</dt>
              <dd>{when(k.created)}</dd>
            </dl>
            {admin && (
              <ActionButton
                label="Rotate"
                confirm="Confirm rotation"
                run={async () => {
                  const r = await api<Key>("POST", `${path}/rotate`);
                  return `Rotated: primary is now v${r.primaryVersion}`;
                }}
                done={key.reload}
              />
            )}
          </Section>
          <Section title="Versions">
            <ErrorLine error={files.error} />
            <Outcome msg={msg} as="p" />
            <table>
              <ColumnHeads
                names={[
                  "Version",
                  "State",
                  "Created",
                  "Destroy after",
                  "Registered files",
                  ...(admin ? ["Actions"] : []),
                ]}
              />
              <tbody>
                {k.versions.map((v) => (
                  <tr key={v.version} data-testid={`version-${v.version}`}>
                    <th scope="row">v{v.version}</th>
                    <td>{v.state}</td>
                    <td>{when(v.created)}</td>
                    <td>{when(v.destroyAfter)}</td>
                    <td>{files.data ? (perVersion.get(v.version) ?? 0) : "—"}</td>
                    {admin && (
                      <td>
                        <VersionActions path={path} v={v} done={key.reload} report={setMsg} />
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
        </>
      )}
    </>
  );
}

function VersionActions(props: {
  path: string;
  v: KeyVersion;
  done: () => void;
  report: (m: Msg) => void;
}) {
  const { path, v, done, report } = props;
  const [days, setDays] = useState("7");
  const base = `${path}/versions/${v.version}`;
  const change = (action: string, body?: unknown) => async () => {
    await api("POST", `${base}/${action}`, body ?? {});
    return `v${v.version}: ${action} done`;
  };
  return (
    <>
      {v.state === "enabled" && (
        <ActionButton
          label={`Disable v${v.version}`}
          confirm="Confirm disable"
          run={change("disable")}
          done={done}
          report={report}
        />
      )}
      {v.state === "disabled" && (
        <ActionButton
          label={`Enable v${v.version}`}
          confirm="Confirm enable"
          run={change("enable")}
          done={done}
          report={report}
        />
      )}
      {v.state === "scheduled" && (
        <ActionButton
          label={`Cancel destroy v${v.version}`}
          confirm="Confirm cancel"
          run={change("cancel-destroy")}
          done={done}
          report={report}
        />
      )}
      {(v.state === "enabled" || v.state === "disabled") && (
        <ActionButton
          label={`Schedule destroy v${v.version}`}
          confirm="Confirm destroy"
          run={async () => {
            const r = await fetchDestroy(base, Number(days));
            return r;
          }}
          done={done}
          report={report}
        >
          <label>
            Days{" "}
            <input
              type="number"
              min="1"
              max="365"
              value={days}
              onInput={(e) => setDays((e.target as HTMLInputElement).value)}
            />
          </label>
        </ActionButton>
      )}
    </>
  );
}

/** 200: scheduled; 202: dual control is on, an approval request was opened instead. */
async function fetchDestroy(base: string, days: number): Promise<string> {
  const r = await api<Destroy202 | { destroyAfter?: string }>("POST", `${base}/schedule-destroy`, {
    days,
  });
  if ("approval" in r)
    return `Approval request ${r.approval} opened: needs ${r.required} approvals`;
  return `Destruction scheduled after ${when(r.destroyAfter)}`;
}
