/**
 * Preloaded into a spawned process (NODE_OPTIONS=--import) by the memory tests: on exit it
 * writes the process's peak RSS in KiB to the file named by TENSORSEAL_TEST_MAX_RSS_FILE. Does
 * nothing without it.
 */
import { readFileSync, writeFileSync } from "node:fs";

/**
 * This process's own peak RSS in KiB: VmHWM, which starts again at exec. Not
 * resourceUsage().maxRSS: Linux carries that over from the parent the child was forked from,
 * so a child of a test holding a 256 MiB object reported the test's 279 MiB.
 */
export function peakRssKiB(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]);
  } catch {
    // not Linux: the portable figure
  }
  return process.resourceUsage().maxRSS;
}

const out = process.env.TENSORSEAL_TEST_MAX_RSS_FILE;
if (out) process.on("exit", () => writeFileSync(out, String(peakRssKiB())));
