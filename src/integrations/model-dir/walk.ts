/** Lists the regular files of a directory tree as sorted relative `/` paths. */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { fail } from "../../format/errors.js";
import { checkRelativePath } from "./manifest.js";

/**
 * Symlinks to regular files are followed (Hugging Face cache snapshots are symlinks into
 * `blobs/`); symlinks to directories and anything that is not a regular file are refused.
 */
export async function listFiles(root: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(join(root, rel), { withFileTypes: true });
  for (const e of entries) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    checkRelativePath(path);
    if (e.isDirectory()) {
      out.push(...(await listFiles(root, path)));
      continue;
    }
    const st = e.isSymbolicLink() ? await stat(join(root, path)) : await lstat(join(root, path));
    if (!st.isFile()) {
      fail("E_USAGE", `${join(root, path)} is not a regular file (or a link to one): remove it`);
    }
    out.push(path);
  }
  return out.sort();
}

/** Hex SHA-256 of a file's bytes. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const piece of createReadStream(path)) hash.update(piece as Buffer);
  return hash.digest("hex");
}
