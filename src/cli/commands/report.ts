/**
 * `tensorseal report`: the auditor's report for a time window (src/report/), as a
 * self-contained HTML file, a PDF printed by headless Chromium, or JSON. Registration only.
 */
import type { Command } from "commander";

export function registerReport(program: Command): void {
  program
    .command("report")
    .description(
      "an auditor's report for a time window: inventory, key releases by key/principal/artifact, denied attempts, approvals, rotations against schedule, doctor findings, audit chain verification",
    )
    .argument("[paths...]", "files or directories whose sealed files the inventory lists")
    .requiredOption("--since <time>", "window start (ISO 8601: 2026-11-01 or ...T10:00Z)")
    .option("--until <time>", "window end, exclusive (ISO 8601; default: now)")
    .option("--db <url>", "read the audit from this service database")
    .option("--public-key <base64>", "the audit public key `serve` printed, to pin the checkpoints")
    .option("-o, --output <file>", "write the HTML report here (atomically), or - for stdout", "-")
    .option("--pdf <file>", "also print it to this PDF with headless Chromium")
    .option("--json", "print the report's data as JSON instead of HTML")
    .addHelpText(
      "after",
      `
The audit comes from --db, or from the key service's API with --server (or TENSORSEAL_SERVER;
a token with the audit scope). Without either, the report has the inventory, rotations and
doctor findings, and says that releases and approvals are missing. Nothing secret is read or
printed: keys, tokens and file contents never appear.

Examples:
  tensorseal report --since 2026-10-01 --until 2026-11-01 --db postgres://ts@db/tensorseal -o q4.html --pdf q4.pdf
  tensorseal --server https://keys.example.com:8443 report --since 2026-11-01 --public-key KEY models/ -o nov.html`,
    )
    .action(async (paths: string[], o, cmd: Command) => {
      const { reportCommand } = await import("../actions/report.js");
      await reportCommand(paths, o, cmd);
    });
}
