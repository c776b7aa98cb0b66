/**
 * Recognises "the database is not reachable right now" (a PostgreSQL restart or crash, a
 * network cut) as opposed to a bug or a bad query, so the service answers 503 (retry later)
 * instead of 500, and logs only the error's code and message: a pg error can carry the client
 * object, and log lines must never hold connection settings.
 */

/** Socket errors of a lost or refused connection. */
const NET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** SQLSTATEs: admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections. */
const PG_CODES = new Set(["57P01", "57P02", "57P03", "53300"]);

/** pg and Kysely raise these as plain Errors (no code) once a connection is gone. */
const MESSAGES = [
  /^Connection terminated/,
  /is not queryable$/,
  /^timeout exceeded when trying to connect/,
  /^Postgres connection has been discarded/,
];

export function isDatabaseUnavailable(e: unknown): boolean {
  if (typeof e !== "object" || e === null) return false;
  const { code, message } = e as { code?: unknown; message?: unknown };
  if (typeof code === "string" && (NET_CODES.has(code) || PG_CODES.has(code) || /^08/.test(code)))
    return true;
  return typeof message === "string" && MESSAGES.some((m) => m.test(message));
}

/** What may be logged about a database error: its code and message, nothing attached to it. */
export function dbErrorSummary(e: unknown): { code?: string; message: string } {
  const { code, message } = (e ?? {}) as { code?: unknown; message?: unknown };
  return {
    ...(typeof code === "string" ? { code } : {}),
    message: typeof message === "string" ? message : String(e),
  };
}

/** A value for a log line's `err`: the summary for an outage, the error itself otherwise. */
export function loggableError(e: unknown): unknown {
  return isDatabaseUnavailable(e) ? dbErrorSummary(e) : e;
}
