/**
 * The service side of an incident opened with --server: `incident open` records it on the key
 * service (POST /v1/incidents, same id), the playbook's steps add a note to its timeline and
 * `incident close` closes it there, so the console shows what the responder does. The record on
 * disk stays the playbook's journal: a service that refuses (older version, no `incidents:open`
 * right) costs a warning, never the response itself (docs/DECISIONS.md).
 */
import { isTensorSealError } from "../format/errors.js";
import type { ServiceClient } from "../keys/service/client.js";
import type { Incident } from "./types.js";

/** Why the service did not take it, or null when it did. */
export type MirrorOutcome = string | null;

async function send(client: ServiceClient, path: string, body: unknown): Promise<MirrorOutcome> {
  try {
    const r = await client.post(path, body);
    if (r.status === 200) return null;
    const msg = typeof r.body.message === "string" ? r.body.message : `HTTP ${r.status}`;
    return `key service ${client.url}${path}: ${msg}`;
  } catch (e) {
    return isTensorSealError(e) ? e.message : "the key service could not be reached";
  }
}

export function mirrorOpen(client: ServiceClient, inc: Incident): Promise<MirrorOutcome> {
  return send(client, "/v1/incidents", {
    id: inc.id,
    title: `${inc.class}: ${inc.scopeText}`.slice(0, 200),
    severity: inc.severity,
    scope: [inc.scope],
    summary: inc.reason,
  });
}

export function mirrorNote(
  client: ServiceClient,
  inc: Incident,
  text: string,
): Promise<MirrorOutcome> {
  return send(client, `/v1/incidents/${inc.id}/notes`, { text: text.slice(0, 4000) });
}

export function mirrorClose(client: ServiceClient, inc: Incident): Promise<MirrorOutcome> {
  const resolution =
    inc.closeNote ??
    `closed by tensorseal incident close (${inc.actions.some((a) => a.what.startsWith("close (forced")) ? "forced before eradication" : "after eradication"})`;
  return send(client, `/v1/incidents/${inc.id}/close`, { resolution: resolution.slice(0, 4000) });
}
