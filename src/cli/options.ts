/** Small parsers shared by commands: repeated k=v flags, sizes, output guards. */
import { existsSync, lstatSync, statSync } from "node:fs";
import { join } from "node:path";
import { fail } from "../format/errors.js";
import { jsonText } from "../format/printable.js";
import { MANIFEST_NAME, SEALED_SUFFIX } from "../integrations/model-dir/manifest.js";
import { writeStdout } from "./stdio.js";

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function parsePairs(pairs: string[] | undefined, flag: string): Record<string, string> {
  // A Map, not `k in {}`: keys such as `constructor` or `__proto__` are ordinary labels here.
  const out = new Map<string, string>();
  for (const p of pairs ?? []) {
    const eq = p.indexOf("=");
    if (eq <= 0) fail("E_USAGE", `${flag} expects KEY=VALUE, got ${JSON.stringify(p)}`);
    const k = p.slice(0, eq);
    if (out.has(k)) fail("E_USAGE", `${flag} ${k} given twice`);
    out.set(k, p.slice(eq + 1));
  }
  return Object.fromEntries(out);
}

/** "1MiB", "16KiB", "65536" → bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+)\s*(KiB|MiB|K|M)?$/i.exec(s.trim());
  if (!m) fail("E_USAGE", `cannot read size ${JSON.stringify(s)} (examples: 16KiB, 1MiB, 65536)`);
  const unit = (m[2] ?? "").toLowerCase();
  return Number(m[1]) * (unit.startsWith("m") ? 1 << 20 : unit.startsWith("k") ? 1024 : 1);
}

/**
 * Refuse to clobber files by accident, and to spray binary onto a terminal. A device or FIFO
 * (`-o /dev/null`) needs no --force: it is written in place, never replaced (engine/output.ts).
 */
export function checkOutput(path: string, force: boolean | undefined): void {
  if (path === "-") {
    if (process.stdout.isTTY)
      fail("E_USAGE", "refusing to write binary data to a terminal: use -o FILE or a pipe");
    return;
  }
  const link = lstatSync(path, { throwIfNoEntry: false });
  if (!link) return;
  const st = statSync(path, { throwIfNoEntry: false });
  if (st?.isDirectory()) fail("E_USAGE", `${path} is a directory: give an output file name`);
  if (st && !st.isFile()) return;
  if (!force) fail("E_USAGE", `${path} exists: pass --force to overwrite it`);
}

/** A directory where a sealed file is expected: say what to do with it instead (E_USAGE). */
export function checkSealedInput(path: string): void {
  if (path === "-" || !statSync(path, { throwIfNoEntry: false })?.isDirectory()) return;
  if (existsSync(join(path, MANIFEST_NAME + SEALED_SUFFIX)))
    fail(
      "E_USAGE",
      `${path} is a sealed model directory: open it with \`tensorseal open-dir ${path} -o DIR\`, or name one of its .tseal files`,
    );
  fail("E_USAGE", `${path} is a directory: give a sealed file`);
}

/** stdin, or a FIFO / device (`<(cmd)`, /dev/stdin): read as a stream, not mapped as a file. */
export function isStreamInput(path: string): boolean {
  if (path === "-") return true;
  const st = statSync(path, { throwIfNoEntry: false });
  return st !== undefined && !st.isFile() && !st.isDirectory();
}

/** JSON on stdout; controls and bidi characters inside strings as \u escapes (jsonText). */
export function printJson(value: unknown): void {
  writeStdout(`${jsonText(value, 2)}\n`);
}
