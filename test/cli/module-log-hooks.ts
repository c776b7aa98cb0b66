/** Loader-thread half of module-log.ts: records the URL of each module as it loads. */
import { appendFileSync } from "node:fs";

let log = "";

export function initialize(data: { log: string }): void {
  log = data.log;
}

type Load = (url: string, context: unknown) => Promise<unknown>;

export async function load(url: string, context: unknown, next: Load): Promise<unknown> {
  if (url.startsWith("file:")) appendFileSync(log, `${url}\n`);
  return next(url, context);
}
