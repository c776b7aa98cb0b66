/** `audit query`'s work (registered in audit-query.ts). */
import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import { jsonSafe } from "../../format/printable.js";
import { isoTime } from "../../service/audit/iso-time.js";
import {
  type AuditFilter,
  openDatabase,
  type QueriedEntry,
  queryApi,
  queryDatabase,
} from "../../service/index.js";
import { print } from "../output.js";
import { serviceDbUrl } from "../service-db.js";
import { remoteServer } from "./audit-remote.js";
import { intFlag, withClient } from "./service-shared.js";

const OUTCOMES = ["allowed", "denied", "error", "alert"];

interface QueryOptions {
  key?: string;
  artifact?: string;
  principal?: string;
  action?: string;
  outcome?: string;
  since?: string;
  until?: string;
  after: string;
  limit?: string;
  db?: string;
  json?: boolean;
}

export async function runAuditQuery(o: QueryOptions, cmd: Command): Promise<void> {
  const filter = filterFrom(o);
  const after = intFlag("--after", o.after, 0, Number.MAX_SAFE_INTEGER);
  const limit =
    o.limit === undefined ? Number.POSITIVE_INFINITY : intFlag("--limit", o.limit, 1, 1e12);
  const show = o.json ? printJsonLine : printLine;
  let count = 0;
  const remote = remoteServer(cmd, o.db);
  if (remote) {
    await withClient(cmd, async (c) => {
      for await (const e of queryApi(c, filter, after, limit)) count += show(e);
    });
  } else {
    const d = await openDatabase(serviceDbUrl(o.db));
    try {
      for await (const e of queryDatabase(d, filter, after, limit)) count += show(e);
    } finally {
      await d.close();
    }
  }
  if (!o.json) process.stderr.write(`tensorseal: ${count} matching entries\n`);
}

function filterFrom(o: QueryOptions): AuditFilter {
  if (o.outcome !== undefined && !OUTCOMES.includes(o.outcome))
    fail("E_USAGE", `--outcome must be one of ${OUTCOMES.join(", ")}`);
  const time = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const t = isoTime(v);
    if (t === null)
      fail(
        "E_USAGE",
        `${flag} must be an ISO 8601 date or UTC time, e.g. 2026-12-01 or 2026-12-01T10:00Z`,
      );
    return t;
  };
  const f: Record<string, string> = {};
  for (const k of ["key", "artifact", "principal", "action", "outcome"] as const)
    if (o[k] !== undefined) f[k] = o[k];
  const from = time("--since", o.since);
  const until = time("--until", o.until);
  if (from !== undefined) f.from = from;
  if (until !== undefined) f.until = until;
  return f;
}

function printJsonLine(e: QueriedEntry): number {
  // The canonical fields plus the hash, as the API returns them; bidi/C1 characters escaped.
  const line = `${e.text.slice(0, -1)},"hash":"${e.hash}"}`;
  process.stdout.write(`${jsonSafe(line)}\n`);
  return 1;
}

function printLine(e: QueriedEntry): number {
  const x = JSON.parse(e.text) as Record<string, unknown>;
  const resource = x.resource ? ` ${JSON.stringify(x.resource)}` : "";
  const reason = typeof x.reason === "string" ? ` (${x.reason})` : "";
  // print() escapes: principals, names and reasons are the callers' to choose.
  print(`${e.seq}  ${x.ts}  ${x.outcome}  ${x.action}  ${x.principal ?? "-"}${resource}${reason}`);
  return 1;
}
