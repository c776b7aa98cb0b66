/**
 * An output directory that appears all at once: everything is written into a fresh temp
 * directory next to the target, which is renamed into place only when complete. On failure
 * the temp directory is removed, so no partial model directory is ever visible.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fail } from "../../format/errors.js";

export async function withAtomicDir<T>(
  target: string,
  fn: (tmp: string) => Promise<T>,
): Promise<T> {
  const abs = resolve(target);
  if (existsSync(abs)) fail("E_USAGE", `${target} exists: choose a new output directory`);
  const tmp = join(dirname(abs), `.${basename(abs)}.tseal-tmp-${randomBytes(8).toString("hex")}`);
  await mkdir(tmp, { mode: 0o700 });
  try {
    const result = await fn(tmp);
    // rename(2) onto a non-existent path; if one appeared meanwhile, it fails and we clean up.
    if (existsSync(abs)) fail("E_USAGE", `${target} appeared while writing: not replacing it`);
    await rename(tmp, abs);
    return result;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}
