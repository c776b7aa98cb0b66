import type { Command } from "commander";
import { jsonSafe } from "../../format/printable.js";
import type { VerifyResult } from "../../service/index.js";
import { EXIT } from "../exit-codes.js";
import { checkOutput, printJson } from "../options.js";
import { say } from "../output.js";
import { registerAuditQuery } from "./audit-query.js";
import { remoteServer } from "./audit-remote.js";
import { intFlag, withClient } from "./service-shared.js";

/** The key service (Fastify, database drivers, Cedar): loaded only when a subcommand runs. */
const keyService = () => import("../../service/index.js");

/** The database --db (or the default) names, opened. */
async function openServiceDb(flag: string | undefined) {
  const { openDatabase } = await keyService();
  const { serviceDbUrl } = await import("../service-db.js");
  return openDatabase(serviceDbUrl(flag));
}

function printSummary(r: VerifyResult, remote: string | null): void {
  for (const p of r.problems) say(`audit: ${p}`); // problems quote entries: escaped
  const anchored = r.anchor
    ? `, ${r.anchor.lines} anchored checkpoints (newest ${r.anchor.newestSeq})`
    : "";
  const where = remote ? ` at ${remote}` : "";
  // Over the API every page read appends an entry: what was verified ends at the head reached.
  const head = remote ? "head reached" : "head";
  const unpinned = remote
    ? " (public key as the server reports it: pin it with --public-key)"
    : " (public key read from the database: pin it with --public-key)";
  say(
    `audit log${where} ${r.ok ? "verified" : "FAILED verification"}: ${r.entries} entries, ${r.checkpoints} checkpoints${anchored}, ${r.unsigned} unsigned after the newest, ${head} ${r.lastSeq}:${r.lastHash.slice(0, 16)}${r.pinned ? "" : unpinned}`,
  );
}

export function registerAudit(program: Command): void {
  const audit = program.command("audit").description("the key service's tamper-evident audit log");
  audit
    .command("verify")
    .description(
      "check the hash chain and signed checkpoints, in the database or over the API (exit 5 when tampered)",
    )
    .option("--db <url>", "service database (default: sqlite:$TENSORSEAL_HOME/service.db)")
    .option(
      "--public-key <base64>",
      "the audit public key `serve` printed (else the one the database or server reports)",
    )
    .option(
      "--anchor <file>",
      "checkpoints kept outside the database (serve --checkpoint-anchor, audit checkpoint lines): each must verify and match the log",
    )
    .option(
      "--checkpoint-every <n>",
      "a signed checkpoint must exist at every multiple of n (the service signs every 64; never read from the log itself)",
      "64",
    )
    .option(
      "--max-unsigned <n>",
      "fail when more than n entries follow the newest checkpoint (0 after a clean shutdown, which signs the head)",
    )
    .option("--json", "print a JSON result")
    .addHelpText(
      "after",
      "\nWith --server URL (or TENSORSEAL_SERVER, unless --db or TENSORSEAL_SERVICE_DB names a database) the log is read over HTTPS with a token holding the audit scope.\n\nExamples:\n  tensorseal audit verify --public-key KEY\n  tensorseal audit verify --public-key KEY --anchor /var/lib/tensorseal-anchor/checkpoints.jsonl\n  tensorseal audit verify --server https://kms:8443 --public-key KEY",
    )
    .action(async (o, cmd: Command) => {
      const opts = {
        ...(o.publicKey ? { publicKey: o.publicKey as string } : {}),
        ...(o.anchor ? { anchor: o.anchor as string } : {}),
        checkpointEvery: intFlag("--checkpoint-every", o.checkpointEvery, 0, 1_000_000),
        ...(o.maxUnsigned !== undefined
          ? { maxUnsigned: intFlag("--max-unsigned", o.maxUnsigned, 0, 1_000_000) }
          : {}),
      };
      const { apiSource, verifyAuditLog, verifyAuditSource } = await keyService();
      const remote = remoteServer(cmd, o.db);
      let r: VerifyResult;
      if (remote) r = await withClient(cmd, (c) => verifyAuditSource(apiSource(c), opts));
      else {
        const d = await openServiceDb(o.db);
        r = await verifyAuditLog(d, opts).finally(() => d.close());
      }
      if (remote && !r.pinned)
        process.stderr.write(
          "tensorseal: WARNING: no --public-key: checkpoints were checked under the key the server sent, which proves nothing if the server or its database is compromised\n",
        );
      if (o.json) printJson(remote ? { ...r, server: remote } : r);
      else printSummary(r, remote);
      if (!r.ok) process.exitCode = EXIT.authentication;
    });
  audit
    .command("checkpoint")
    .alias("head")
    .description(
      "print the newest signed checkpoint as one JSON line, to anchor it outside the database",
    )
    .option("--db <url>", "service database (default: sqlite:$TENSORSEAL_HOME/service.db)")
    .option("--public-key <base64>", "check it under this key (else the one in the database)")
    .option("--json", "print JSON (the output is one JSON line anyway)")
    .addHelpText(
      "after",
      "\nExample:\n  tensorseal audit checkpoint --public-key KEY >> /mnt/worm/tensorseal-checkpoints.jsonl   # from cron",
    )
    .action(async (o) => {
      const { newestAnchorLine } = await keyService();
      const d = await openServiceDb(o.db);
      const { line } = await newestAnchorLine(
        d,
        o.publicKey ? { publicKey: o.publicKey } : {},
      ).finally(() => d.close());
      process.stdout.write(`${line}\n`);
    });
  audit
    .command("export")
    .description("write every entry as JSON lines (for a SIEM)")
    .option("--db <url>", "service database (default: sqlite:$TENSORSEAL_HOME/service.db)")
    .option("-o, --output <file>", "output file (written atomically), or - for stdout", "-")
    .option("-f, --force", "overwrite an existing output file")
    .option("--json", "print JSON lines (the output is JSON lines anyway)")
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal audit export -o audit.jsonl\n  tensorseal audit export --db postgres://ts@db/tensorseal | gzip > audit-$(date +%F).jsonl.gz",
    )
    .action(async (o) => {
      if (o.output !== "-") checkOutput(o.output, o.force);
      const { exportAuditLog } = await keyService();
      const { withOutputStream } = await import("../../engine/output.js");
      const d = await openServiceDb(o.db);
      // Entries quote principals and names: jsonSafe escapes bidi and C1 characters in them
      // (the parsed values are unchanged).
      const write = async (out: NodeJS.WritableStream) => {
        for await (const line of exportAuditLog(d))
          if (!out.write(jsonSafe(line))) await new Promise<void>((r) => out.once("drain", r));
      };
      try {
        if (o.output === "-") await write(process.stdout);
        else await withOutputStream(o.output, write);
      } finally {
        await d.close();
      }
    });
  registerAuditQuery(audit);
}
