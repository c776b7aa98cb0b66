/** --batch-max and the connection timeouts (--request-timeout, --headers-timeout, ...). */
import { fail } from "../../../format/errors.js";
import type { ServerOptions } from "../../../service/index.js";
import type { ServeFlags } from "../../commands/serve/flags.js";
import { intFlag } from "../../commands/service-shared.js";

export interface LimitSettings {
  readonly batchMax: number;
  readonly timeouts: NonNullable<ServerOptions["timeouts"]>;
}

export function limitSettings(o: ServeFlags): LimitSettings {
  const seconds = (flag: string, v: string) => intFlag(flag, v, 1, 3600, " seconds") * 1000;
  const requestMs = seconds("--request-timeout", o.requestTimeout);
  const headersMs = seconds("--headers-timeout", o.headersTimeout);
  if (headersMs > requestMs)
    fail("E_USAGE", "--headers-timeout cannot be longer than --request-timeout");
  return {
    batchMax: intFlag("--batch-max", o.batchMax, 1, 10_000),
    timeouts: {
      requestMs,
      headersMs,
      idleMs: seconds("--idle-timeout", o.idleTimeout),
      keepAliveMs: seconds("--keep-alive-timeout", o.keepAliveTimeout),
    },
  };
}
