/**
 * An output directory that appears all at once: everything is written into a fresh temp
 * directory next to the target (0700, named like the engine's temporary files so a later run
 * can remove it if this process is killed), which is renamed into place only when complete.
 * On failure, and on SIGINT/SIGTERM/SIGHUP, the temp directory is wiped (files truncated, then
 * removed), so no partial model directory is ever visible and no plaintext stays behind.
 */
import { existsSync } from "node:fs";
import { mkdir, rename } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { onInterrupt, removeStaleTemps, tempPathFor, wipeTreeSync } from "../../engine/index.js";
import { fail } from "../../format/errors.js";

export async function withAtomicDir<T>(
  target: string,
  fn: (tmp: string) => Promise<T>,
): Promise<T> {
  const abs = resolve(target);
  if (existsSync(abs)) fail("E_USAGE", `${target} exists: choose a new output directory`);
  removeStaleTemps(dirname(abs));
  const tmp = tempPathFor(abs, true);
  const release = onInterrupt(() => wipeTreeSync(tmp)); // before mkdir: no window without it
  try {
    await mkdir(tmp, { mode: 0o700 });
    const result = await fn(tmp);
    // rename(2) onto a non-existent path; if one appeared meanwhile, it fails and we clean up.
    if (existsSync(abs)) fail("E_USAGE", `${target} appeared while writing: not replacing it`);
    await rename(tmp, abs);
    return result;
  } catch (e) {
    wipeTreeSync(tmp);
    throw e;
  } finally {
    release();
  }
}
