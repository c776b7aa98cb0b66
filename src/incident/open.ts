/** incident open / close: create the record (crash-safe), and end it. */
import { fail } from "../format/errors.js";
import type { ServiceClient } from "../keys/service/client.js";
import type { KeyControl } from "./controls.js";
import { actor } from "./journal.js";
import { classify, parseScope, scopeText } from "./scope.js";
import { newIncidentId, saveIncident } from "./store.js";
import type { Incident } from "./types.js";

export interface OpenOptions {
  readonly home: string;
  readonly scope: string;
  readonly reason: string;
  /** When the compromise was detected (ISO time), if before the incident was opened. */
  readonly detected?: string;
  readonly control: KeyControl | null;
  readonly client: ServiceClient | null;
  readonly now: () => Date;
}

export async function openIncident(o: OpenOptions): Promise<Incident> {
  const scope = parseScope(o.scope);
  if (o.reason.trim().length === 0 || o.reason.length > 2000)
    fail("E_USAGE", "--reason must be 1..2000 characters");
  if (scope.kind !== "key" && !o.client)
    fail(
      "E_USAGE",
      `a ${scope.kind} incident needs the key service (its audit and controls): pass --server URL`,
    );
  const compromised: Incident["compromised"] = [];
  if (scope.kind === "key") {
    if (!o.control) fail("E_USAGE", "no keystore: run `tensorseal init` or pass --server URL");
    const k = await o.control.key(scope.value);
    const live = k.versions.filter((v) => v.state !== "destroyed").map((v) => v.version);
    if (scope.version !== undefined && !k.versions.some((v) => v.version === scope.version))
      fail(
        "E_USAGE",
        `key ${scope.value} has no version ${scope.version} (versions: ${k.versions.map((v) => v.version).join(", ")})`,
      );
    compromised.push({
      key: scope.value,
      versions: scope.version !== undefined ? [scope.version] : live,
    });
  }
  const now = o.now();
  let detected = now.toISOString();
  if (o.detected !== undefined) {
    const t = Date.parse(o.detected);
    if (Number.isNaN(t) || t > now.getTime())
      fail("E_USAGE", "--detected must be an ISO time, not in the future");
    detected = new Date(t).toISOString();
  }
  const c = classify(scope);
  const inc: Incident = {
    format: "tensorseal-incident",
    v: 1,
    id: newIncidentId(now),
    scope,
    scopeText: scopeText(scope),
    reason: o.reason,
    class: c.class,
    severity: c.severity,
    ...(o.client ? { server: { url: o.client.url, id: await o.client.id() } } : {}),
    compromised,
    state: "open",
    times: { detected, opened: now.toISOString() },
    openedBy: actor(),
    actions: [],
    files: [],
  };
  await saveIncident(o.home, inc);
  return inc;
}

export async function closeIncident(
  home: string,
  inc: Incident,
  o: { note?: string; force?: boolean; now: () => Date },
): Promise<Incident> {
  if (inc.state === "closed") return inc;
  if (inc.state !== "eradicated" && !o.force)
    fail(
      "E_USAGE",
      `incident ${inc.id} is ${inc.state}, not eradicated: finish the playbook, or close with --force (the report keeps the residual risk)`,
    );
  inc.state = "closed";
  inc.times.closed = o.now().toISOString();
  inc.actions.push({
    step: "close",
    id: "close",
    what: o.force ? "close (forced before eradication)" : "close",
    state: "done",
    started: inc.times.closed,
    finished: inc.times.closed,
    actor: actor(),
  });
  if (o.note) inc.closeNote = o.note;
  await saveIncident(home, inc);
  return inc;
}
