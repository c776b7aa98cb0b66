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

/** Hex SHA-256 of a file's bytes; `onBytes` hears of each piece read. */
export async function sha256File(path: string, onBytes?: (n: number) => void): Promise<string> {
  const hash = createHash("sha256");
  for await (const piece of createReadStream(path)) {
    hash.update(piece as Buffer);
    onBytes?.((piece as Buffer).length);
  }
  return hash.digest("hex");
}

/** Progress over a directory: plaintext bytes done of all its files' bytes, and the file at hand. */
export type DirProgress = (done: number, total: number, path: string) => void;

/** One file's share of a DirProgress. */
export interface FileProgress {
  /** The engine's progress callback: cumulative bytes of the crypto pass. */
  crypto(done: number): void;
  /** sha256File's: bytes of each piece hashed. */
  hashed(n: number): void;
}

/**
 * Counts a directory's files into one progress: each file is read twice (sealed or opened, and
 * hashed), and each pass counts for half of its bytes.
 */
export function dirProgress(report: DirProgress | undefined, total: number) {
  let finished = 0;
  return {
    file(path: string): FileProgress {
      let crypto = 0;
      let hashed = 0;
      const tell = () => report?.(finished + (crypto + hashed) / 2, total, path);
      return {
        crypto: (done: number) => {
          crypto = done;
          tell();
        },
        hashed: (n: number) => {
          hashed += n;
          tell();
        },
      };
    },
    finished(size: number) {
      finished += size;
    },
  };
}
