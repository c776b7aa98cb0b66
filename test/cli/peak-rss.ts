/**
 * The peak RSS of one CLI run, for the memory tests: the child preloads max-rss-reporter.ts
 * (NODE_OPTIONS=--import), which writes its VmHWM on exit.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { sandbox } from "./helpers.js";

const REPORTER = pathToFileURL(
  join(dirname(fileURLToPath(import.meta.url)), "max-rss-reporter.js"),
).href;

/** The peak RSS (KiB) of one successful run of `args` in `sb`, as the child reports it. */
export async function cliPeakKib(
  sb: ReturnType<typeof sandbox>,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<number> {
  const rssFile = join(sb.dir, "rss.txt");
  const r = await sb.runAsync(args, {
    ...env,
    NODE_OPTIONS: `--import=${REPORTER}`,
    TENSORSEAL_TEST_MAX_RSS_FILE: rssFile,
  });
  assert.equal(r.status, 0, r.stderr);
  const peak = Number(readFileSync(rssFile, "utf8"));
  assert.ok(peak > 0, "the child reported its peak RSS");
  return peak;
}
