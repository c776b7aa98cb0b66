/**
 * `audit query`: the entries about a key, artifact, principal, action or outcome in a time
 * range, from the database or over the API. Registration only; the work is in
 * audit-query-run.ts, loaded when the command runs.
 */
import type { Command } from "commander";

export function registerAuditQuery(audit: Command): void {
  audit
    .command("query")
    .description("list the audit entries that match filters (indexed; paged)")
    .option("--key <name>", "entries naming this key (releases, rotations, refusals)")
    .option("--artifact <id>", "entries naming this registered artifact (its unwraps included)")
    .option("--principal <id>", "entries of this principal (exact id, e.g. token:ab12...)")
    .option("--action <name>", "entries of this action, e.g. datakeys.unwrap")
    .option("--outcome <outcome>", "allowed, denied, error or alert")
    .option("--since <time>", "entries at or after this time (ISO 8601: 2026-12-01 or ...T10:00Z)")
    .option("--until <time>", "entries before this time (ISO 8601)")
    .option("--after <n>", "entries after sequence number n (to resume paging)", "0")
    .option("--limit <n>", "at most n entries (default: all that match)")
    .option("--db <url>", "service database (default: sqlite:$TENSORSEAL_HOME/service.db)")
    .option("--json", "print each entry as a JSON line (its canonical fields and hash)")
    .addHelpText(
      "after",
      "\nWith --server URL (or TENSORSEAL_SERVER, unless --db or TENSORSEAL_SERVICE_DB names a database) the entries are read over HTTPS with a token holding the audit scope, and each entry's hash is recomputed. A filtered list proves each entry it shows, not that none is missing: audit verify proves the chain.\n\nExamples:\n  tensorseal audit query --key llama-weights --since 2026-12-01\n  tensorseal audit query --artifact model-v3 --action datakeys.unwrap --json\n  tensorseal audit query --principal token:0123456789abcdef --outcome denied --server https://kms:8443",
    )
    .action(async (o, cmd: Command) => {
      const { runAuditQuery } = await import("./audit-query-run.js");
      await runAuditQuery(o, cmd);
    });
}
