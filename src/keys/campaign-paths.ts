/**
 * Which files a rewrap covers: files, directories (recursively), glob patterns the shell did not
 * expand (`*`, `?`, `[...]`, `**`), and manifests (one path per line, `#` comments, relative to
 * the manifest's directory). The result is absolute, sorted and without duplicates, so a
 * resumed campaign sees the same list.
 *
 * A file named on the command line or in a manifest is always taken (if it is not sealed, its
 * rewrap fails and says so). A file found by walking a directory or matching a pattern is taken
 * when it starts with the .tseal magic bytes, whatever its name (DCP shards, `.metadata`), or
 * when it is named `*.tseal` (a damaged one must fail visibly, not vanish); everything else
 * found is reported as skipped, with the reason: not sealed, a symbolic link (never followed),
 * not a regular file, unreadable, a TensorSeal temporary file (`*.tseal-tmp-*`).
 */
import { constants, type Dirent } from "node:fs";
import { open, readdir, readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { isTempName } from "../engine/stale-temps.js";
import { fail } from "../format/errors.js";
import { MAGIC } from "../format/header.js";

const GLOB_CHARS = /[*?[]/;

export interface SkippedFile {
  readonly file: string;
  readonly reason: string;
}

export interface FoundFiles {
  /** Sealed files (and named ones) to work on. */
  readonly files: string[];
  /** What a walk or a pattern found but left alone, and why. */
  readonly skipped: SkippedFile[];
}

export async function findSealedFiles(
  args: readonly string[],
  manifests: readonly string[] = [],
): Promise<FoundFiles> {
  const found = new Finder();
  for (const a of args) await found.add(resolve(a), a);
  for (const m of manifests) {
    let text: string;
    try {
      text = await readFile(m, "utf8");
    } catch (e) {
      return fail("E_IO", `cannot read manifest ${m}: ${(e as NodeJS.ErrnoException).code}`, e);
    }
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.trim();
      if (line.length === 0 || line.startsWith("#")) continue;
      await found.add(isAbsolute(line) ? line : resolve(dirname(resolve(m)), line), line);
    }
  }
  return found.result();
}

/** The files of `findSealedFiles`, without the report of what was skipped. */
export async function expandPaths(
  args: readonly string[],
  manifests: readonly string[] = [],
): Promise<string[]> {
  return (await findSealedFiles(args, manifests)).files;
}

class Finder {
  private readonly files = new Set<string>();
  private readonly skipped = new Map<string, string>();

  async add(abs: string, shown: string): Promise<void> {
    const st = await stat(abs).catch(() => null);
    if (st?.isDirectory()) return this.walk(abs);
    if (st) {
      this.files.add(abs);
      return;
    }
    if (GLOB_CHARS.test(shown)) return this.glob(abs);
    fail("E_IO", `${shown}: no such file or directory`);
  }

  result(): FoundFiles {
    for (const f of this.files) this.skipped.delete(f);
    return {
      files: [...this.files].sort(),
      skipped: [...this.skipped]
        .map(([file, reason]) => ({ file, reason }))
        .sort((a, b) => (a.file < b.file ? -1 : 1)),
    };
  }

  /** A file a walk or a pattern found: taken if sealed (or named so), else skipped with why. */
  private async found(path: string, entry: Dirent): Promise<void> {
    if (entry.isSymbolicLink()) return this.skip(path, "symbolic link (not followed)");
    if (!entry.isFile()) return this.skip(path, "not a regular file");
    // Another run's output being written, or a crash's leftover that the next write into this
    // directory removes: never a file to work on (it starts with the magic too).
    if (isTempName(entry.name)) return this.skip(path, "a TensorSeal temporary file");
    const head = await readHead(path);
    if (typeof head === "string") return this.skip(path, `unreadable (${head})`);
    if (head.equals(MAGIC) || entry.name.endsWith(".tseal")) this.files.add(path);
    else this.skip(path, "not sealed (no .tseal magic bytes)");
  }

  private skip(path: string, reason: string): void {
    if (!this.files.has(path)) this.skipped.set(path, reason);
  }

  /** Everything below `dir`; symbolic links are reported, never followed. */
  private async walk(dir: string): Promise<void> {
    const stack = [dir];
    while (stack.length > 0) {
      const d = stack.pop()!;
      let entries: Dirent[];
      try {
        entries = await readdir(d, { withFileTypes: true });
      } catch (e) {
        this.skip(d, `unreadable directory (${(e as NodeJS.ErrnoException).code ?? e})`);
        continue;
      }
      for (const e of entries) {
        const p = join(d, e.name);
        if (e.isDirectory()) stack.push(p);
        else await this.found(p, e);
      }
    }
  }

  /** Expands an absolute glob pattern; hidden names only when the pattern says so. */
  private async glob(pattern: string): Promise<void> {
    const parts = pattern.split(sep);
    let i = 0;
    while (i < parts.length && !GLOB_CHARS.test(parts[i]!)) i++;
    const base = parts.slice(0, i).join(sep) || sep;
    let matched = 0;
    const visit = async (dir: string, rest: string[]): Promise<void> => {
      const [seg, ...tail] = rest;
      if (seg === undefined) return;
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => [] as Dirent[]);
      if (seg === "**") {
        await visit(dir, tail);
        for (const e of entries)
          if (e.isDirectory() && !e.name.startsWith(".")) await visit(join(dir, e.name), rest);
        return;
      }
      const re = segmentRegex(seg);
      for (const e of entries) {
        if (e.name.startsWith(".") && !seg.startsWith(".")) continue;
        if (!re.test(e.name)) continue;
        const p = join(dir, e.name);
        if (tail.length === 0) {
          if (e.isDirectory()) continue;
          matched++;
          await this.found(p, e);
        } else if (e.isDirectory()) await visit(p, tail);
      }
    };
    await visit(base, parts.slice(i));
    if (matched === 0) this.skip(pattern, "pattern matched no file");
  }
}

/** The first bytes of a file (as many as the magic), or the error code that stopped reading. */
async function readHead(path: string): Promise<Buffer | string> {
  try {
    // The entry may have been replaced since readdir: never follow a link, never block on a FIFO.
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      if (!(await fh.stat()).isFile()) return "replaced while being listed";
      const buf = Buffer.alloc(MAGIC.length);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e);
  }
}

function segmentRegex(seg: string): RegExp {
  let re = "";
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = seg.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        const body = seg
          .slice(i + 1, end)
          .replace(/^!/, "^")
          .replace(/\\/g, "\\\\");
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}
