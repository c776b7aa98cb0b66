/**
 * Load helpers for the PostgreSQL outage tests (pg-restart.test.ts, pg-restart-replicas.test.ts):
 * a plain-HTTP JSON call that never throws (status 0 for no answer), and the audit's request ids.
 */
import { type Agent, request } from "node:http";
import type { Database } from "../../src/service/index.js";
import { bearer } from "./helpers.js";

export const REQUEST_TIMEOUT_MS = 15_000;

export interface Answer {
  status: number; // 0: no HTTP answer (connection error or timeout)
  id: string;
  body: string;
  error?: string;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function call(
  port: number,
  agent: Agent,
  method: string,
  path: string,
  tok?: string,
  body?: unknown,
): Promise<Answer> {
  return new Promise((ok) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method,
        agent,
        timeout: REQUEST_TIMEOUT_MS,
        headers: {
          ...(tok ? bearer(tok) : {}),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
      },
      (res) => {
        let t = "";
        res.setEncoding("utf8");
        res.on("data", (d) => {
          t += d;
        });
        res.on("end", () =>
          ok({ status: res.statusCode ?? 0, id: String(res.headers["x-request-id"]), body: t }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => ok({ status: 0, id: "", body: "", error: e.message }));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Every audit entry's requestId, in chain order. */
export async function auditRequestIds(
  db: Database,
): Promise<{ id: string; outcome: string; principal: string }[]> {
  const rows = await db.db.selectFrom("audit").select("entry").orderBy("seq").execute();
  return rows.map((r) => {
    const e = JSON.parse(r.entry) as { requestId: string; outcome: string; principal: string };
    return { id: e.requestId, outcome: e.outcome, principal: e.principal };
  });
}

/** Request ids seen more than once, with their counts. */
export function repeatedIds(ids: readonly { id: string }[]): [string, number][] {
  const count = new Map<string, number>();
  for (const e of ids) count.set(e.id, (count.get(e.id) ?? 0) + 1);
  return [...count].filter(([, n]) => n > 1);
}

/** Answers counted by status, as JSON (for messages). */
export function statusSummary(answers: readonly Answer[]): string {
  const by = new Map<number, number>();
  for (const a of answers) by.set(a.status, (by.get(a.status) ?? 0) + 1);
  return JSON.stringify(Object.fromEntries(by));
}
