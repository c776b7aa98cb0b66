/**
 * The one service client a `doctor --server` run uses for every API check (keys, policies,
 * overview findings, audit): one keep-alive agent, so one TLS handshake and one token read per
 * run instead of one per check. Without a token in the environment there is no client, and
 * each check says so (or stays silent) as before.
 */
import { isTensorSealError } from "../format/errors.js";
import { type ServiceClient, serviceClientFromEnv } from "../keys/service/index.js";

export interface ServiceAccess {
  /** The service's origin, for the evidence. */
  readonly origin: string;
  /** Null without a token, or when the client could not be set up (`why` says which). */
  readonly client: ServiceClient | null;
  readonly why: string;
}

export function openServiceAccess(url: string): ServiceAccess {
  const origin = new URL(url).origin;
  if (!process.env.TENSORSEAL_SERVER_TOKEN && !process.env.TENSORSEAL_SERVER_TOKEN_FILE)
    return { origin, client: null, why: "no token in the environment" };
  try {
    return { origin, client: serviceClientFromEnv(url), why: "" };
  } catch (e) {
    // A bad CA/cert path or a malformed token: named by the variable, never the token.
    if (e instanceof Error) return { origin, client: null, why: e.message };
    throw e;
  }
}

/**
 * GET `path` for a check: the body of a 200, or why there is none (no client, the status and
 * the service's message, or the error that stopped the request) for the check's "unchecked"
 * finding.
 */
export async function getForCheck(
  access: ServiceAccess,
  path: string,
): Promise<{ body: Record<string, unknown> } | { why: string }> {
  if (!access.client) return { why: access.why };
  try {
    const r = await access.client.get(path);
    if (r.status !== 200) {
      const msg = typeof r.body.message === "string" ? ` ${r.body.message}` : "";
      return { why: `HTTP ${r.status}${msg}` };
    }
    return { body: r.body };
  } catch (e) {
    if (isTensorSealError(e) || e instanceof Error) return { why: e.message };
    throw e;
  }
}
