/**
 * Which files a rotation campaign covers: files, directories (recursively, `*.tseal`), glob
 * patterns the shell did not expand (`*`, `?`, `[...]`, `**`), and manifests (one path per
 * line, `#` comments, relative to the manifest's directory). The result is absolute, sorted and
 * without duplicates, so a resumed campaign sees the same list.
 */
import type { Dirent } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { fail } from "../format/errors.js";

const GLOB_CHARS = /[*?[]/;

export async function expandPaths(
  args: readonly string[],
  manifests: readonly string[] = [],
): Promise<string[]> {
  const out = new Set<string>();
  for (const a of args) for (const f of await expandOne(resolve(a), a)) out.add(f);
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
      const p = isAbsolute(line) ? line : resolve(dirname(resolve(m)), line);
      for (const f of await expandOne(p, line)) out.add(f);
    }
  }
  return [...out].sort();
}

async function expandOne(abs: string, shown: string): Promise<string[]> {
  const st = await stat(abs).catch(() => null);
  if (st?.isDirectory()) return walk(abs);
  if (st) return [abs];
  if (GLOB_CHARS.test(shown)) return glob(abs);
  return fail("E_IO", `${shown}: no such file or directory`);
}

/** Every `*.tseal` below `dir` (symbolic links are not followed). */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    let entries: Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (e) {
      return fail("E_IO", `cannot list ${d}: ${(e as NodeJS.ErrnoException).code}`, e);
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile() && e.name.endsWith(".tseal")) out.push(p);
    }
  }
  return out;
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

/** Expands an absolute glob pattern; files only; hidden names only when the pattern says so. */
async function glob(pattern: string): Promise<string[]> {
  const parts = pattern.split(sep);
  let i = 0;
  while (i < parts.length && !GLOB_CHARS.test(parts[i]!)) i++;
  const base = parts.slice(0, i).join(sep) || sep;
  const out: string[] = [];
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
        if (e.isFile()) out.push(p);
      } else if (e.isDirectory()) await visit(p, tail);
    }
  };
  await visit(base, parts.slice(i));
  if (out.length === 0) fail("E_IO", `${pattern}: no file matches`);
  return out;
}
