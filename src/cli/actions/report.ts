/** The `report` command's work: window and sources checked, data gathered, HTML/PDF/JSON out. */
import type { Command } from "commander";
import { writeFileAtomic } from "../../engine/output.js";
import { fail } from "../../format/errors.js";
import { defaultHome } from "../../keys/index.js";
import { gatherReport } from "../../report/gather.js";
import { renderReport } from "../../report/html.js";
import { isoTime } from "../../service/audit/iso-time.js";
import { remoteServer } from "../commands/audit-remote.js";
import { describeStanza } from "../describe.js";
import { EXIT } from "../exit-codes.js";
import { keystoreOptions } from "../keys-context.js";
import { printJson } from "../options.js";
import { say } from "../output.js";
import { serviceDbUrl } from "../service-db.js";

export interface ReportFlags {
  since: string;
  until?: string;
  db?: string;
  publicKey?: string;
  output: string;
  pdf?: string;
  json?: boolean;
}

function time(flag: string, v: string): string {
  return (
    isoTime(v) ??
    fail(
      "E_USAGE",
      `${flag} must be an ISO 8601 date or UTC time, e.g. 2026-12-01 or 2026-12-01T10:00Z`,
    )
  );
}

export async function reportCommand(paths: string[], o: ReportFlags, cmd: Command): Promise<void> {
  if (o.json && o.pdf) fail("E_USAGE", "--json and --pdf are contradictory: give one");
  const ksOpts = keystoreOptions();
  const now = ksOpts.now?.() ?? new Date();
  const since = time("--since", o.since);
  const until = o.until === undefined ? now.toISOString() : time("--until", o.until);
  if (since >= until) fail("E_USAGE", "--since must be before --until");
  const server = remoteServer(cmd, o.db);
  const { defaultRotationSeconds } = await import("../rotation-default.js");
  const data = await gatherReport({
    since,
    until,
    paths,
    home: defaultHome(),
    now,
    defaultRotation: defaultRotationSeconds(),
    db: server
      ? undefined
      : o.db || process.env.TENSORSEAL_SERVICE_DB
        ? serviceDbUrl(o.db)
        : undefined,
    server: server ?? undefined,
    publicKey: o.publicKey,
    keystoreOptions: ksOpts,
    describe: describeStanza,
  });
  // A log that does not verify is the auditor's first finding: the report is still written.
  if (data.chain && !data.chain.ok) process.exitCode = EXIT.authentication;
  if (o.json) return printJson(data);
  const html = renderReport(data);
  if (o.output === "-") process.stdout.write(html);
  else {
    await writeFileAtomic(o.output, html);
    say(`wrote ${o.output}`);
  }
  if (o.pdf) {
    const { printPdf } = await import("../../report/pdf.js");
    await printPdf(html, o.pdf);
    say(`wrote ${o.pdf}`);
  }
}
