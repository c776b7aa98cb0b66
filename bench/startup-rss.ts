/**
 * Preload for bench/startup.ts where /usr/bin/time is missing: writes the process's own peak
 * RSS (KiB) to $TENSORSEAL_RSS_FILE at exit.
 */
import { writeFileSync } from "node:fs";

const out = process.env.TENSORSEAL_RSS_FILE;
if (out) process.on("exit", () => writeFileSync(out, String(process.resourceUsage().maxRSS)));
