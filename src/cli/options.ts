/** Small parsers shared by commands: repeated k=v flags, sizes, output guards. */
import { existsSync } from "node:fs";
import { fail } from "../format/errors.js";

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

/** Refuse to clobber files by accident, and to spray binary onto a terminal. */
export function checkOutput(path: string, force: boolean | undefined): void {
  if (path === "-") {
    if (process.stdout.isTTY)
      fail("E_USAGE", "refusing to write binary data to a terminal: use -o FILE or a pipe");
    return;
  }
  if (!force && existsSync(path)) fail("E_USAGE", `${path} exists: pass --force to overwrite it`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
