/** The console's shell: sign-in until a session exists, then navigation and the current view. */
import { useEffect, useState } from "preact/hooks";
import { useRoute } from "./route";
import { currentSession, signOut } from "./session";
import type { SessionInfo } from "./types";
import { Status } from "./ui";
import { AlertsView } from "./views/alerts";
import { ApprovalsView } from "./views/approvals";
import { ArtifactsView } from "./views/artifacts";
import { AuditView } from "./views/audit";
import { IncidentDetailView } from "./views/incident-detail";
import { IncidentsView } from "./views/incidents";
import { KeyDetailView } from "./views/key-detail";
import { KeysView } from "./views/keys";
import { OverviewView } from "./views/overview";
import { SignInView } from "./views/signin";

const NAV: [string, string][] = [
  ["overview", "Overview"],
  ["keys", "Keys"],
  ["artifacts", "Artifacts"],
  ["audit", "Audit"],
  ["approvals", "Approvals"],
  ["alerts", "Alerts & principals"],
  ["incidents", "Incidents & drills"],
];

export function App() {
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  useEffect(() => {
    currentSession().then(setSession);
  }, []);
  if (session === undefined) return <Status>Loading…</Status>;
  if (session === null) return <SignInView onSignedIn={setSession} />;
  return <Shell session={session} onSignedOut={() => setSession(null)} />;
}

function Shell({ session, onSignedOut }: { session: SessionInfo; onSignedOut: () => void }) {
  const route = useRoute();
  const here = route.path[0];
  const out = async () => {
    await signOut().catch(() => {});
    onSignedOut();
  };
  return (
    <div class="shell">
      <header class="top">
        <span class="brand">TensorSeal console</span>
        <span class="who">
          Signed in as <strong data-testid="principal">{session.principal}</strong> (
          {session.roles.join(", ")})
        </span>
        <button type="button" onClick={out}>
          Sign out
        </button>
      </header>
      <nav aria-label="Console sections">
        <ul>
          {NAV.map(([id, label]) => (
            <li key={id}>
              <a href={`#/${id}`} aria-current={here === id ? "page" : undefined}>
                {label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main>{view(route.path, route.params, session)}</main>
    </div>
  );
}

function view(path: string[], params: URLSearchParams, s: SessionInfo) {
  switch (path[0]) {
    case "keys":
      return path[1] ? <KeyDetailView name={path[1]} session={s} /> : <KeysView session={s} />;
    case "artifacts":
      return <ArtifactsView params={params} />;
    case "audit":
      return <AuditView params={params} />;
    case "approvals":
      return <ApprovalsView session={s} />;
    case "alerts":
      return <AlertsView session={s} />;
    case "incidents":
      return path[1] ? (
        <IncidentDetailView id={path[1]} session={s} />
      ) : (
        <IncidentsView session={s} />
      );
    case "overview":
      return <OverviewView />;
    default:
      return <h1>No such view</h1>;
  }
}
