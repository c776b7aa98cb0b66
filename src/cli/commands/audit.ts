import { createWriteStream } from "node:fs";
import type { Command } from "commander";
import { exportAuditLog, openDatabase, verifyAuditLog } from "../../service/index.js";
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
    .option("--json", "print a JSON result")
    .action(async (o) => {
      const d = await openDatabase(serviceDbUrl(o.db));
      const r = await verifyAuditLog(d, o.publicKey ? { publicKey: o.publicKey } : {}).finally(() =>
        d.close(),
      );
      if (o.json) printJson(r);
      else {
        for (const p of r.problems) process.stderr.write(`tensorseal: audit: ${p}\n`);
        process.stderr.write(
          `tensorseal: audit log ${r.ok ? "verified" : "FAILED verification"}: ${r.entries} entries, ${r.checkpoints} checkpoints, head ${r.lastSeq}:${r.lastHash.slice(0, 16)}${r.pinned ? "" : " (public key read from the database: pin it with --public-key)"}\n`,
        );
      }
      if (!r.ok) process.exitCode = EXIT.authentication;
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
