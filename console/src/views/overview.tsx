/**
 * Overview: keys due for rotation, pending approvals, open incidents, alerts of the last 24 hours, blocked
 * principals, the audit chain's head and last signed checkpoint, and the doctor findings the
 * service judges about itself (keys past their rotation period, old bootstrap tokens) — one request
 * (GET /v1/overview, audited once). The server leaves out the sections the caller may not read
 * (decided with the same Cedar actions as the routes behind them); each says so here.
 */
import type { ComponentChildren } from "preact";
import { api } from "../api";
import { href } from "../route";
import type { Overview, OverviewSection } from "../types";
import { LoadStatus, Section, Status, useLoad, when } from "../ui";

/** A section's body, or the notice that the caller's rights leave it out. */
function Part({
  o,
  name,
  children,
}: {
  o: Overview | null;
  name: OverviewSection;
  children: ComponentChildren;
}) {
  if (!o) return null;
  if (o.omitted.includes(name))
    return (
      <p class="notice" data-testid={`omitted-${name}`}>
        Not permitted for your identity.
      </p>
    );
  return <>{children}</>;
}

export function OverviewView() {
  const ov = useLoad(() => api<Overview>("GET", "/v1/overview"), []);
  const o = ov.data;
  const cp = o?.chain?.checkpoint;
  return (
    <>
      <h1>Overview</h1>
      <LoadStatus r={ov} />
      <div class="grid">
        <Section title="Keys due for rotation">
          <Part o={o} name="keys">
            {o?.keys &&
              (o.keys.due.length === 0 ? (
                <Status>No key is due within 7 days ({o.keys.total} keys).</Status>
              ) : (
                <ul data-testid="due-keys">
                  {o.keys.due.map((k) => (
                    <li key={k.name}>
                      <a href={href(`keys/${encodeURIComponent(k.name)}`)}>{k.name}</a> due{" "}
                      {when(k.rotationDue)}
                    </li>
                  ))}
                </ul>
              ))}
          </Part>
        </Section>
        <CountSection
          o={o}
          name="approvals"
          title="Pending approvals"
          id="pending-count"
          noun="pending"
        />
        <CountSection
          o={o}
          name="incidents"
          title="Open incidents"
          id="incident-count"
          noun="open"
        />
        <CountSection
          o={o}
          name="alerts"
          title="Alerts (24 hours)"
          id="alert-count"
          noun="alerts"
        />
        <Section title="Blocked principals">
          <Part o={o} name="blocked">
            {o?.blocked && (
              <p>
                <a href={href("alerts")} data-testid="blocked-count">
                  {o.blocked.count} blocked
                </a>
              </p>
            )}
          </Part>
        </Section>
        <Section title="Audit chain">
          <Part o={o} name="chain">
            {o?.chain && (
              <dl>
                <dt>Head</dt>
                <dd data-testid="head-seq">
                  {o.chain.head ? `seq ${o.chain.head.seq}` : "no entries yet"}
                </dd>
                {cp ? (
                  <>
                    <dt>Last signed checkpoint</dt>
                    <dd data-testid="checkpoint-seq">
                      seq {cp.seq}{" "}
                      {cp.valid ? (
                        <span data-testid="checkpoint-valid">(signature and entry match)</span>
                      ) : (
                        <strong class="error" data-testid="checkpoint-invalid">
                          (does NOT match: run audit verify)
                        </strong>
                      )}
                    </dd>
                    <dt>Signed</dt>
                    <dd>{when(cp.ts)}</dd>
                    <dt>Head hash at the checkpoint</dt>
                    <dd class="mono">{cp.hash.slice(0, 16)}…</dd>
                  </>
                ) : (
                  <>
                    <dt>Last signed checkpoint</dt>
                    <dd>none signed yet</dd>
                  </>
                )}
                <dt>Server</dt>
                <dd class="mono">{o.chain.server}</dd>
              </dl>
            )}
          </Part>
          <p class="hint">
            Verify the whole chain offline with <code>tensorseal audit verify --server</code>.
          </p>
        </Section>
        <Section title="Doctor findings">
          <Part o={o} name="findings">
            {o?.findings &&
              (o.findings.length === 0 ? (
                <Status>
                  <span data-testid="no-findings">
                    No finding on the service's keys and tokens.
                  </span>
                </Status>
              ) : (
                <ul data-testid="findings">
                  {o.findings.map((f) => (
                    <li key={`${f.id} ${f.message}`} data-finding={f.id}>
                      <strong class={f.severity === "note" ? undefined : "error"}>
                        {f.severity}
                      </strong>{" "}
                      {f.message}
                      <br />
                      Fix: <code>{f.fix}</code>
                    </li>
                  ))}
                </ul>
              ))}
          </Part>
          <p class="hint">
            The rest (TLS, files, keystores) is checked by <code>tensorseal doctor</code>.
          </p>
        </Section>
      </div>
    </>
  );
}

/** A section holding one capped count ("100+ pending") that links to the view listing them. */
function CountSection({
  o,
  name,
  title,
  id,
  noun,
}: {
  o: Overview | null;
  name: "approvals" | "incidents" | "alerts";
  title: string;
  id: string;
  noun: string;
}) {
  const count = o?.[name];
  return (
    <Section title={title}>
      <Part o={o} name={name}>
        {count && (
          <p>
            <a href={href(name)} data-testid={id}>
              {count.count}
              {count.more ? "+" : ""} {noun}
            </a>
          </p>
        )}
      </Part>
    </Section>
  );
}
