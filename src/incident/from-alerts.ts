/**
 * Incidents opened from the key service's anomaly alerts: each alert entry of the audit
 * (`alert.rate`, and `alert.first-seen` when asked) whose principal has no incident open yet
 * opens a principal incident, with the alert's id and reason in the record. Containment is a
 * separate, human step (`incident contain`), unless the caller asks for it (`--contain`).
 */
import type { ServiceClient } from "../keys/service/client.js";
import { queryApi } from "../service/audit/query.js";
import { openIncident } from "./open.js";
import { listIncidents } from "./store.js";
import type { Incident } from "./types.js";

export interface FromAlertsOptions {
  readonly home: string;
  readonly client: ServiceClient;
  readonly since?: string;
  readonly kinds: readonly string[];
  readonly now: () => Date;
}

interface AlertEntry {
  ts: string;
  action: string;
  principal?: string;
  reason?: string;
  resource?: { alert?: string };
}

export async function incidentsFromAlerts(o: FromAlertsOptions): Promise<Incident[]> {
  const open = new Set(
    (await listIncidents(o.home))
      .filter((i) => i.state !== "closed" && i.scope.kind === "principal")
      .map((i) => i.scope.value),
  );
  const opened: Incident[] = [];
  const filter = { outcome: "alert", ...(o.since ? { from: o.since } : {}) };
  for await (const e of queryApi(o.client, filter)) {
    const x = JSON.parse(e.text) as AlertEntry;
    if (!o.kinds.includes(x.action) || !x.principal || open.has(x.principal)) continue;
    open.add(x.principal);
    opened.push(
      await openIncident({
        home: o.home,
        scope: `principal:${x.principal}`,
        reason:
          `${x.action} ${x.resource?.alert ?? ""} (audit entry ${e.seq}): ${x.reason ?? ""}`.slice(
            0,
            2000,
          ),
        detected: x.ts,
        control: null,
        client: o.client,
        now: o.now,
      }),
    );
  }
  return opened;
}
