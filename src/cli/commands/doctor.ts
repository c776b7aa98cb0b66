/**
 * `tensorseal doctor`: cryptographic health checks (src/doctor/). Registration only: the
 * checks are loaded by the action, so other commands (and `--version`) never load them.
 */
import type { Command } from "commander";

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description(
      "check keys, sealed files, secret file permissions and the key service for cryptographic hygiene problems",
    )
    .argument(
      "[paths...]",
      "files or directories to scan: sealed files (found by their magic bytes), identity files, root key shares and keystores (found by content)",
    )
    .option("--format <format>", "text, json or sarif (SARIF 2.1.0, for CI code scanning)", "text")
    .option("--json", "same as --format json")
    .option(
      "--fail-on <severity>",
      "lowest severity that makes the exit code non-zero: note, warning, error, critical or none",
      "error",
    )
    .option(
      "--cert-days <days>",
      "with --server (or TENSORSEAL_SERVER): report a service TLS certificate expiring within this many days",
      "30",
    )
    .option(
      "--db <url>",
      "service database whose bootstrap tokens are checked (TENSORSEAL_SERVICE_DB; default sqlite:$TENSORSEAL_HOME/service.db when it exists)",
    )
    .option(
      "--token-days <days>",
      "report a live bootstrap token (they never expire) this many days old or older",
      "90",
    )
    .option(
      "--checkpoint-days <days>",
      "with --db, or --server and a token with the audit scope: report audit entries left this many days without a signed checkpoint (default 1)",
    )
    .option(
      "--drill-days <days>",
      "report when no breach drill ran in this many days, and when none is recorded (default 90, checked only if a drill history exists)",
    )
    .option(
      "--drill-history <file>",
      "the drill history to check (TENSORSEAL_DRILL_HISTORY; default $TENSORSEAL_HOME/drills/history.jsonl)",
    )
    .option(
      "--policy <path>",
      "a Cedar policy file, or a directory of *.cedar files (as serve --policy reads them), checked for over-broad permits",
    )
    .option(
      "--share-days <days>",
      "report a root key share file under PATHS written this many days ago or more (no test recovery is recorded)",
      "180",
    )
    .addHelpText(
      "after",
      `
Checks (ids are stable; docs/DECISIONS.md): key.rotation-overdue, keystore.weak-kdf,
keystore.unverified, file.version-destroyed, file.version-retired, file.version-below-minimum,
file.version-not-latest, file.leftover-slot, file.weak-passphrase, file.tier-violation,
file.tier-rotation, file.tier-unknown, file.unreadable-header,
perm.root-key-readable, perm.identity-readable, perm.share-readable, perm.keystore-readable,
plaintext.sealed-copy, service.key-rotation-overdue, service.keys-unchecked, service.plaintext-http,
service.tls-cert-expiring, service.tls-untrusted, service.token-no-expiry, service.unreachable,
service.audit-chain-broken, service.audit-checkpoint-stale, drill.none, drill.stale, drill.failed,
service.policy-overbroad, service.policies-unchecked, root.shares-untested,
service.dual-control-off, service.audit-anchor-missing (judged by the service, relayed),
runtime.end-of-life.

Exit 0 when no finding reaches --fail-on (default error); otherwise 20 + the worst severity:
20 note, 21 warning, 22 error, 23 critical. Keys without a rotation period of their own are
judged against doctor.rotation_period in .tensorseal.yaml (default 365d; none turns it off).

Examples:
  tensorseal doctor
  tensorseal doctor models/ ~/.config/tensorseal
  tensorseal doctor --format sarif --fail-on warning models/ > doctor.sarif
  tensorseal doctor --json --server https://keys.example.com:8443 models/
  tensorseal doctor --db postgres://ts@db/tensorseal --token-days 30
  tensorseal doctor --drill-days 30
  tensorseal doctor --policy policies/`,
    )
    .action(async (paths: string[], o, cmd: Command) => {
      const { doctorCommand } = await import("../../doctor/command.js");
      await doctorCommand(paths, { ...o, server: cmd.optsWithGlobals().server });
    });
}
