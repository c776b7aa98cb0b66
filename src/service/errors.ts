/**
 * Errors a client may see: an HTTP status and a stable code. Anything else is a 5xx whose
 * details stay in the server log (the client gets only the request id). 400 means the request
 * does not match the route's schema (the OpenAPI document); a request that matches it but whose
 * content cannot be used (a stanza that is not a well-formed service stanza, a recipient whose
 * checksum fails, a policy that does not validate) is 422: a schema-valid request is never 400.
 */
import { isTensorSealError } from "../format/errors.js";
import { isDatabaseUnavailable } from "./db/unavailable.js";

export type ServiceErrorCode =
  | "bad_request"
  | "unauthenticated"
  | "forbidden"
  | "not_found"
  | "not_mine"
  | "conflict"
  | "version_unavailable"
  /** A tier minimum (serve --tier-policy): 409 for key settings, 403 for a release. */
  | "tier_violation"
  | "does_not_open"
  | "unprocessable"
  | "too_large"
  | "audit_unavailable"
  | "database_unavailable"
  | "internal";

export class ServiceError extends Error {
  constructor(
    readonly status: number,
    readonly code: ServiceErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ServiceError";
  }
}

export function deny(status: 401 | 403, message: string): never {
  throw new ServiceError(status, status === 401 ? "unauthenticated" : "forbidden", message);
}

/** Maps any thrown value to what the client may be told. */
export function publicError(e: unknown, reqId: string): ServiceError {
  if (e instanceof ServiceError) return e;
  const fe = e as { statusCode?: number; validation?: unknown; code?: string; message?: string };
  if (fe?.validation) return new ServiceError(400, "bad_request", fe.message ?? "invalid request");
  if (typeof fe?.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code =
      fe.statusCode === 413 ? "too_large" : fe.statusCode === 404 ? "not_found" : "bad_request";
    return new ServiceError(fe.statusCode, code, fe.message ?? "bad request");
  }
  if (isTensorSealError(e, "E_MALFORMED") || isTensorSealError(e, "E_USAGE")) {
    return new ServiceError(422, "unprocessable", e.message);
  }
  if (isTensorSealError(e, "E_DECRYPT")) return new ServiceError(422, "does_not_open", e.message);
  // An outage (PostgreSQL restarting) is temporary: 503 tells the client to retry, not a bug.
  if (isDatabaseUnavailable(e))
    return new ServiceError(
      503,
      "database_unavailable",
      "the database is unavailable: retry later",
    );
  return new ServiceError(500, "internal", `internal error (request ${reqId})`);
}
