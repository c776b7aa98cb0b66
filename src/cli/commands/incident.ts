/**
 * `tensorseal incident open|contain|assess|eradicate|report|list|close`: the compromise
 * playbook (docs/INCIDENTS.md). Registration only: the work is in ../actions/incident.ts and
 * src/incident/, loaded when a subcommand runs.
 */
import type { Command } from "commander";
import { collect } from "../options.js";

type Run = (name: string, args: unknown[]) => Promise<void>;

const run: Run = async (name, args) => {
  const m = await import("../actions/incident.js");
  await m.runIncident(name, args);
};

export function registerIncident(program: Command): void {
  const incident = program
    .command("incident")
    .description("the compromise playbook: open, contain, assess, eradicate, report, close")
    .addHelpText(
      "after",
      "\nEach step is recorded in $TENSORSEAL_HOME/incidents/ID.json (time, actor, outcome) and can be\nrerun after a crash: done actions are skipped, interrupted ones finished, nothing done twice.\n\nExamples:\n  tensorseal incident open --scope key:default@1 --reason 'laptop with keystore stolen'\n  tensorseal incident contain inc-20261205-0a1b2c3d\n  tensorseal incident eradicate inc-20261205-0a1b2c3d models/\n  tensorseal incident report inc-20261205-0a1b2c3d --format md -o report.md",
    );
  incident
    .command("open")
    .description("open an incident for a compromised key, principal, endpoint or artifact")
    .requiredOption(
      "--scope <scope>",
      "key:NAME[@VERSION] | principal:ID | endpoint:ADDR | artifact:ID",
    )
    .requiredOption("--reason <text>", "what happened (kept in the record and the report)")
    .option("--detected <time>", "when the compromise was detected (ISO time; default now)")
    .option("--contain", "contain at once (the first of the responder's two commands)")
    .option("--since <time>", "with --contain, endpoint scope: principals from this time (ISO)")
    .option(
      "--fingerprint <sha256>",
      "with --contain: a client certificate to revoke as well (repeatable)",
      collect,
    )
    .option("--json", "print the incident record as JSON")
    .addHelpText(
      "after",
      "\nKey scopes act on the local keystore, or on the key service with --server; the other scopes\nneed the key service (its audit and controls). With --server the incident is also recorded on\nthe key service under the same id (the console shows it; contain, eradicate and close follow it\nthere); a refusal there is a warning.\n\nExamples:\n  tensorseal incident open --scope key:default@1 --reason 'keystore copied'\n  tensorseal --server https://kms:8443 incident open --scope principal:token:3f9c2b7a1d4e8f60 --reason 'token in a public repo'\n  tensorseal --server https://kms:8443 incident open --scope endpoint:10.0.0.7 --reason 'host compromised'\n  tensorseal --server https://kms:8443 incident open --scope principal:token:3f9c2b7a1d4e8f60 --reason 'token leaked' --contain",
    )
    .action((o) => run("open", [o]));
  incident
    .command("contain")
    .description("block releases for the scope at once (fail closed)")
    .argument("<id>", "incident id")
    .option("--since <time>", "endpoint scope: look for principals from this time (ISO)")
    .option(
      "--fingerprint <sha256>",
      "a client certificate to revoke besides those the service saw (repeatable)",
      collect,
    )
    .option("--json", "print the recorded actions as JSON")
    .addHelpText(
      "after",
      "\nkey: rotate if the primary is compromised, disable each compromised version; principal:\nblocked, its token and client certificates revoked on the key service; endpoint: the same for\nevery principal that received keys from it; artifact: recorded (eradicate reseals). Under\n`serve --approvals contain=2` a second admin approves first: rerun contain after that.\n\nExamples:\n  tensorseal incident contain inc-20261205-0a1b2c3d\n  tensorseal incident contain inc-20261205-0a1b2c3d --since 2026-12-01",
    )
    .action((id, o) => run("contain", [id, o]));
  incident
    .command("assess")
    .description("which keys were released to whom, and which files are exposed or at risk")
    .argument("<id>", "incident id")
    .argument("[paths...]", "sealed files, directories or glob patterns to classify")
    .option("--since <time>", "start of the window (ISO time; default: the whole audit)")
    .option("--reseal-all", "key scope on the key service: count at-risk files as exposed")
    .option("--json", "print the assessment as JSON")
    .addHelpText(
      "after",
      "\nexposed: the file key must be assumed known (released in the window; for the local keystore,\nany file under a compromised version); at-risk: under a compromised version, no release.\n\nExamples:\n  tensorseal incident assess inc-20261205-0a1b2c3d models/ --since 2026-12-01\n  tensorseal incident assess inc-20261205-0a1b2c3d 'ckpt/**/*.tseal' --json",
    )
    .action((id, paths, o) => run("assess", [id, paths, o]));
  incident
    .command("eradicate")
    .description(
      "rotate, reseal exposed files, rewrap the rest, raise the minimum, schedule destroy",
    )
    .argument("<id>", "incident id")
    .argument("<paths...>", "sealed files, directories or glob patterns")
    .option(
      "-i, --identity <file>",
      "identity file for files the keystore does not open (repeatable)",
      collect,
    )
    .option(
      "--known-recipient <tseal1...>",
      "x25519 public key of a recipient to keep (repeatable)",
      collect,
    )
    .option(
      "--destroy-days <n>",
      "waiting period before the compromised versions are destroyed (1..365)",
      "7",
    )
    .option("--reenable", "key service key scope: enable the compromised versions while resealing")
    .option("--concurrency <n>", "files resealed at once (1..64)", "2")
    .option("--since <time>", "when it assesses: start of the window (ISO time)")
    .option("--reseal-all", "when it assesses: count at-risk files as exposed")
    .option("--report <file>", "then write the report to FILE (.json, .html, else Markdown)")
    .option("--public-key <base64>", "with --report: the audit public key, pinned")
    .option("--json", "print the files and the state as JSON")
    .addHelpText(
      "after",
      "\nA containment waiting for its approval is finished first, and PATHS assessed when the incident\nis not. After a crash, rerun the same command: resealed files are not resealed again.\nUnder dual control the destruction is an approval request: approve it, then rerun.\nExit 1 while a file is unreachable (still on the compromised key).\n\nExamples:\n  tensorseal incident eradicate inc-20261205-0a1b2c3d models/\n  tensorseal incident eradicate inc-20261205-0a1b2c3d models/ -i partner.key --destroy-days 30\n  tensorseal incident eradicate inc-20261205-0a1b2c3d models/ --report incident.md",
    )
    .action((id, paths, o) => run("eradicate", [id, paths, o]));
  incident
    .command("report")
    .description("timeline, actions and approvals, files, residual risk, forensic appendix")
    .argument("<id>", "incident id")
    .option("--format <format>", "md, json or html", "md")
    .option("-o, --output <file>", "write the report to FILE (atomically) instead of stdout")
    .option(
      "--public-key <base64>",
      "the audit public key `serve` printed, pinned for the chain check",
    )
    .addHelpText(
      "after",
      '\nExamples:\n  tensorseal incident report inc-20261205-0a1b2c3d\n  tensorseal incident report inc-20261205-0a1b2c3d --format html -o incident.html --public-key "$AUDIT_KEY"',
    )
    .action((id, o) => run("report", [id, o]));
  incident
    .command("from-alerts")
    .description(
      "open a principal incident for each anomaly alert of the key service not yet handled",
    )
    .option("--since <time>", "alerts from this time (ISO; default: the whole audit)")
    .option("--first-seen", "also first-seen alerts (default: rate alerts only)")
    .option("--contain", "contain each new incident at once (default: a responder runs contain)")
    .option("--json", "print the incidents opened as JSON")
    .addHelpText(
      "after",
      "\nRun it from cron or after an alert webhook fires; an alert whose principal already has an open\nincident opens nothing. Needs a token that may read the audit.\n\nExamples:\n  tensorseal --server https://kms:8443 incident from-alerts --since 2026-12-05\n  tensorseal --server https://kms:8443 incident from-alerts --first-seen --contain --json",
    )
    .action((o) => run("from-alerts", [o]));
  incident
    .command("list")
    .description("incidents in this home (tab-separated: id, state, severity, scope, opened)")
    .option("--json", "print JSON (an array of records)")
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal incident list\n  tensorseal incident list --json",
    )
    .action((o) => run("list", [o]));
  incident
    .command("close")
    .description("close an eradicated incident")
    .argument("<id>", "incident id")
    .option("--note <text>", "closing note")
    .option("--force", "close before eradication (the report keeps the residual risk)")
    .option("--json", "print the record as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal incident close inc-20261205-0a1b2c3d --note 'postmortem PM-42'",
    )
    .action((id, o) => run("close", [id, o]));
}
