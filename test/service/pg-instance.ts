/**
 * The private PostgreSQL instance for outage tests (the harness itself is
 * scripts/pg-instance.ts, shared with the soak bench). Skipped where PostgreSQL is not
 * installed, except in CI (CI=true or TENSORSEAL_REQUIRE_ALL=1): there the test runs and fails
 * with the reason.
 */
import { pgInstanceUnavailable } from "../../scripts/pg-instance.js";

export { type PgInstance, startPgInstance } from "../../scripts/pg-instance.js";

const required = process.env.CI === "true" || process.env.TENSORSEAL_REQUIRE_ALL === "1";

/** A skip reason for node:test, or false (run; in CI also when unavailable, so it fails). */
export function privatePgSkip(): string | false {
  const why = pgInstanceUnavailable();
  return why && !required ? `private PostgreSQL: ${why}` : false;
}
