/** What every step works with: the record, where the keys live, and the key service client. */
import { fail } from "../format/errors.js";
import type { ServiceClient } from "../keys/service/client.js";
import type { KeyControl } from "./controls.js";
import type { Incident } from "./types.js";

export interface IncidentContext {
  readonly home: string;
  readonly inc: Incident;
  /** The local keystore or the key service, as the incident names (null: no keystore). */
  readonly control: KeyControl | null;
  /** The key service (incidents opened with --server), else null. */
  readonly client: ServiceClient | null;
  readonly now: () => Date;
}

/** The key service client, or a usage error for a step that needs one. */
export function needService(ctx: IncidentContext, what: string): ServiceClient {
  return (
    ctx.client ??
    fail("E_USAGE", `${what} needs the key service: open the incident with --server URL`)
  );
}

export function needControl(ctx: IncidentContext): KeyControl {
  return (
    ctx.control ??
    fail("E_USAGE", "no keystore: run `tensorseal init` or open the incident with --server URL")
  );
}
