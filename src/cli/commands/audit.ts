import { createWriteStream } from "node:fs";
import type { Command } from "commander";
import {
  exportAuditLog,
  newestAnchorLine,
  openDatabase,
  verifyAuditLog,
} from "../../service/index.js";
import { EXIT } from "../exit-codes.js";
import { printJson } from "../options.js";
import { serviceDbUrl } from "./serve.js";

export function registerAudit(program: Command): void {
  const audit = program.command("audit").description("the key service's tamper-evident audit log");
  audit
    .command("verify")
    .description("check the hash chain and signed checkpoints (exit 5 when tampered)")
    .option("--db <url>", "service database (default: sqlite:$TENSORSEAL_HOME/service.db)")
    .option(
      "--public-key <base64>",
      "the audit public key `serve` printed (else the one in the database)",
    )
    .option(
      "--anchor <file>",
      "checkpoints kept outside the database (serve --checkpoint-anchor, audit checkpoint lines): each must verify and match the log",
    )
    .option("--json", "print a JSON result")
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal audit verify --public-key KEY\n  tensorseal audit verify --public-key KEY --anchor /var/lib/tensorseal-anchor/checkpoints.jsonl",
    )
    .action(async (o) => {
      const d = await openDatabase(serviceDbUrl(o.db));
      const r = await verifyAuditLog(d, {
        ...(o.publicKey ? { publicKey: o.publicKey } : {}),
        ...(o.anchor ? { anchor: o.anchor } : {}),
      }).finally(() => d.close());
      if (o.json) printJson(r);
      else {
        for (const p of r.problems) process.stderr.write(`tensorseal: audit: ${p}\n`);
        const anchored = r.anchor
          ? `, ${r.anchor.lines} anchored checkpoints (newest ${r.anchor.newestSeq})`
          : "";
        process.stderr.write(
          `tensorseal: audit log ${r.ok ? "verified" : "FAILED verification"}: ${r.entries} entries, ${r.checkpoints} checkpoints${anchored}, head ${r.lastSeq}:${r.lastHash.slice(0, 16)}${r.pinned ? "" : " (public key read from the database: pin it with --public-key)"}\n`,
        );
      }
      if (!r.ok) process.exitCode = EXIT.authentication;
    });
  audit
    .command("checkpoint")
    .alias("head")
    .description(
      "print the newest signed checkpoint as one JSON line, to anchor it outside the database",
    )
    .option("--db <url>", "service database")
    .option("--public-key <base64>", "check it under this key (else the one in the database)")
    .addHelpText(
      "after",
      "\nExample (cron):\n  tensorseal audit checkpoint --public-key KEY >> /mnt/worm/tensorseal-checkpoints.jsonl",
    )
    .action(async (o) => {
      const d = await openDatabase(serviceDbUrl(o.db));
      const { line } = await newestAnchorLine(
        d,
        o.publicKey ? { publicKey: o.publicKey } : {},
      ).finally(() => d.close());
      process.stdout.write(`${line}\n`);
    });
  audit
    .command("export")
    .description("write every entry as JSON lines (for a SIEM)")
    .option("--db <url>", "service database")
    .option("-o, --output <file>", "output file, or - for stdout", "-")
    .action(async (o) => {
      const d = await openDatabase(serviceDbUrl(o.db));
      const out: NodeJS.WritableStream =
        o.output === "-" ? process.stdout : createWriteStream(o.output, { flags: "wx" });
      try {
        for await (const line of exportAuditLog(d))
          if (!out.write(line)) await new Promise<void>((r) => out.once("drain", () => r()));
      } finally {
        await d.close();
        if (out !== process.stdout) await new Promise<void>((r) => out.end(() => r()));
      }
    });
}
