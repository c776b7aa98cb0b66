import type { Command } from "commander";
import { fail } from "../../format/errors.js";

/**
 * The server to read the audit from over the API, or null for the database. An explicit --db
 * or --server decides; otherwise TENSORSEAL_SERVER does, unless TENSORSEAL_SERVICE_DB names the
 * database (a service host that also seals keeps reading its own database).
 */
export function remoteServer(cmd: Command, db: string | undefined): string | null {
  const flag = cmd.optsWithGlobals().server as string | undefined;
  if (flag && db) fail("E_USAGE", "give --db (the database) or --server (the API), not both");
  if (flag) return flag;
  if (db || process.env.TENSORSEAL_SERVICE_DB) return null;
  return process.env.TENSORSEAL_SERVER || null;
}
