/** Where the key service's database is, for `serve` and the commands that open it directly. */
import { join } from "node:path";
import { homeDir } from "./keys-context.js";

/** --db, else TENSORSEAL_SERVICE_DB, else sqlite:$TENSORSEAL_HOME/service.db. */
export function serviceDbUrl(flag: string | undefined): string {
  return flag ?? process.env.TENSORSEAL_SERVICE_DB ?? `sqlite:${join(homeDir(), "service.db")}`;
}
