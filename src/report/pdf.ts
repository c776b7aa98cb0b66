/**
 * Prints the report's HTML to PDF with a headless Chromium (Debian's `chromium`, or the browser
 * TENSORSEAL_CHROMIUM names). The HTML has no script and no external resource, so printing loads
 * nothing but the file itself; the PDF is written atomically.
 */
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { onInterrupt } from "../engine/interrupt.js";
import { writeFileAtomic } from "../engine/output.js";
import { fail } from "../format/errors.js";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
const PRINT_TIMEOUT_MS = 120_000;

export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  const named = env.TENSORSEAL_CHROMIUM;
  if (named) return named;
  const found = CANDIDATES.find((c) => existsSync(c));
  return (
    found ??
    fail(
      "E_USAGE",
      "--pdf needs Chromium: install it (Debian: apt-get install chromium) or set TENSORSEAL_CHROMIUM",
    )
  );
}

function run(bin: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), PRINT_TIMEOUT_MS);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

export async function printPdf(html: string, target: string): Promise<void> {
  const bin = chromiumPath();
  const dir = await mkdtemp(join(tmpdir(), "tensorseal-report-"));
  // SIGINT/SIGTERM while Chromium prints: the rendered report and its profile go too.
  const forget = onInterrupt(() => rmSync(dir, { recursive: true, force: true }));
  try {
    const page = join(dir, "report.html");
    const pdf = join(dir, "report.pdf");
    await writeFile(page, html, { mode: 0o600 });
    const args = [
      "--headless",
      "--disable-gpu",
      "--no-first-run",
      "--no-pdf-header-footer",
      `--user-data-dir=${join(dir, "profile")}`,
      `--print-to-pdf=${pdf}`,
      // Chromium refuses to run as root with its sandbox; the page has no script and no network.
      ...(process.getuid?.() === 0 ? ["--no-sandbox"] : []),
      pathToFileURL(page).href,
    ];
    const r = await run(bin, args).catch((e: NodeJS.ErrnoException) =>
      fail(
        "E_USAGE",
        `cannot run ${bin} (${e.code ?? e.name}): install Chromium or set TENSORSEAL_CHROMIUM`,
      ),
    );
    const out = existsSync(pdf) ? await readFile(pdf) : null;
    if (r.code !== 0 || !out || out.subarray(0, 5).toString("latin1") !== "%PDF-")
      fail(
        "E_IO",
        `Chromium did not print the report (exit ${r.code}): ${r.stderr.trim().split("\n").pop() ?? ""}`,
      );
    await writeFileAtomic(target, out);
  } finally {
    forget();
    await rm(dir, { recursive: true, force: true });
  }
}
