/**
 * `tensorseal drill`: breach drills against a private sandbox (src/drill/). Registration only:
 * the scenarios, the key service and its database drivers load in the actions.
 */
import type { Command } from "commander";

export function registerDrill(program: Command): void {
  const drill = program
    .command("drill")
    .description(
      "play breach scenarios against a private sandbox and check that the defences hold",
    );
  drill
    .command("list")
    .description("list the drill scenarios")
    .option("--json", "print JSON: [{name, summary}]")
    .addHelpText("after", "\nExamples:\n  tensorseal drill list\n  tensorseal drill list --json")
    .action(async (o) => {
      const { drillList } = await import("../actions/drill.js");
      await drillList(o);
    });
  drill
    .command("run")
    .description(
      "run scenarios in a temporary sandbox (own keystore, a key service on loopback); print pass/fail, time-to-detect and time-to-contain; record them in the drill history",
    )
    .argument("[scenarios...]", "scenario names (tensorseal drill list)")
    .option("--all", "run every scenario")
    .option(
      "--db <url>",
      "run the sandbox's key service on PostgreSQL, in a fresh schema dropped afterwards (postgres://...; default SQLite in the sandbox)",
    )
    .option(
      "--history <file>",
      "drill history to append to (TENSORSEAL_DRILL_HISTORY; default $TENSORSEAL_HOME/drills/history.jsonl)",
    )
    .option("--no-record", "do not append to the drill history")
    .option("--json", "print JSON: {passed, failed, reports, history}")
    .addHelpText(
      "after",
      `
Each scenario plays one breach against its own sandbox (temporary directory, keystore, service
database and a key service on 127.0.0.1) and checks that the defence held; nothing outside the
sandbox is touched and the sandbox is removed afterwards. Times are in milliseconds from the
breach. With --server (TENSORSEAL_SERVER) the results are also recorded on the key service
(POST /v1/drills: the console's drill history). Exit 0 when every scenario passed, 1 when any
failed (or the service refused the record).

Examples:
  tensorseal drill run --all
  tensorseal drill run insider-burst leaked-file-key
  tensorseal drill run --all --db postgres://ts@127.0.0.1/test --json
  tensorseal drill run stolen-version --history /var/lib/tensorseal/drills.jsonl
  tensorseal drill run --all --no-record
  tensorseal --server https://kms:8443 drill run --all   # also recorded on the key service (console)`,
    )
    .action(async (names: string[], o) => {
      const { drillRun } = await import("../actions/drill.js");
      await drillRun(names, o);
    });
  drill
    .command("history")
    .description("show the drill history, newest last, and each scenario's latest result")
    .option(
      "--history <file>",
      "drill history to read (TENSORSEAL_DRILL_HISTORY; default $TENSORSEAL_HOME/drills/history.jsonl)",
    )
    .option("--scenario <name>", "only this scenario's runs")
    .option("--json", "print JSON: {records, latest, skipped}")
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal drill history\n  tensorseal drill history --scenario lost-root --json",
    )
    .action(async (o) => {
      const { drillHistory } = await import("../actions/drill.js");
      await drillHistory(o);
    });
}
