/**
 * What the command left in its output directory, found without following anything: regular
 * files are sealed; symbolic links (which could point at /etc/passwd or at the model's
 * plaintext) and FIFOs, sockets and devices are refused by name, never opened.
 */
import type { Stats } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { isTensorSealError } from "../format/errors.js";
import { checkRelativePath, MANIFEST_NAME } from "./model-dir/manifest.js";

export interface OutputFile {
  /** Relative `/` path below the output directory. */
  readonly path: string;
  /** lstat of the file when found: the open must reach this same inode. */
  readonly stat: Stats;
}

export interface RefusedOutput {
  readonly path: string;
  readonly why: string;
}

export interface OutputListing {
  readonly files: OutputFile[];
  readonly refused: RefusedOutput[];
}

export async function listOutputs(root: string): Promise<OutputListing> {
  const listing: OutputListing = { files: [], refused: [] };
  await walk(root, "", listing);
  listing.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return listing;
}

async function walk(root: string, rel: string, into: OutputListing): Promise<void> {
  const entries = await readdir(join(root, rel), { withFileTypes: true });
  for (const e of entries) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    const why = unsafeName(path);
    if (why) {
      into.refused.push({ path, why });
      continue;
    }
    const st = await lstat(join(root, path));
    if (st.isDirectory()) await walk(root, path, into);
    else if (st.isFile()) into.files.push({ path, stat: st });
    else into.refused.push({ path, why: kindOf(st) });
  }
}

/** A name the sealed directory cannot carry (the manifest's own, or an unsafe path). */
function unsafeName(path: string): string | null {
  if (path === MANIFEST_NAME) return "the name is reserved for the manifest";
  try {
    checkRelativePath(path);
    return null;
  } catch (e) {
    if (isTensorSealError(e)) return "the name cannot be stored (backslash or too long)";
    throw e;
  }
}

function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return "a symbolic link, not followed";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  return "not a regular file";
}
