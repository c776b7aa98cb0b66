/**
 * `tensorseal keys ...`: KEK lifecycle commands. Small enough to keep their actions here; the
 * keystore (and with it the keys layer) loads only when one runs.
 */
import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import { printable } from "../../format/printable.js";
import type { KeyInfo, KeySettings, Keystore } from "../../keys/index.js";
import { printJson } from "../options.js";
import { print } from "../output.js";

export function registerKeys(program: Command): void {
  const keys = program
    .command("keys")
    .description("manage key-encryption keys (KEKs) in the local keystore: versions and lifecycle");
  keys
    .command("create")
    .description("create a KEK at version 1")
    .argument("<name>", "key name ([A-Za-z0-9._-], up to 128 characters)")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal keys create models\n  tensorseal seal ckpt.pt -k models   # wrap under the primary version of models",
    )
    .action(async (name: string, o) => {
      const k = await (await openKeystore()).createKey(name);
      report(o.json, k, `created key ${name} (version 1)`);
    });
  keys
    .command("list")
    .description(
      "keys, tab-separated: name, primary, minimum versions, rotation period, versions:states",
    )
    .option("--json", "print JSON")
    .addHelpText("after", "\nExamples:\n  tensorseal keys list\n  tensorseal keys list --json")
    .action(async (o) => {
      const list = (await openKeystore()).listKeys();
      if (o.json) return printJson(list);
      for (const k of list) process.stdout.write(`${summary(k)}\n`); // fields escaped
    });
  keys
    .command("show")
    .description("one key with its versions, states and wrap counts (JSON)")
    .argument("<name>", "key name")
    .option("--json", "print JSON (the output is JSON anyway)")
    .addHelpText("after", "\nExample:\n  tensorseal keys show default")
    .action(async (name: string) => {
      const k = (await openKeystore()).showKey(name);
      printJson(k); // the human form is the JSON too
    });
  keys
    .command("rotate")
    .description("add a new version and make it primary (older versions still open files)")
    .argument("<name>", "key name")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nNew files use the new version; run `tensorseal rewrap --to-latest PATHS` to move old ones.\n\nExample:\n  tensorseal keys rotate default && tensorseal rewrap --to-latest models/",
    )
    .action(async (name: string, o) => {
      const k = await (await openKeystore()).rotateKey(name);
      report(o.json, k, `rotated ${name}: primary version is now ${k.primaryVersion}`);
    });
  keys
    .command("rotate-due")
    .description("rotate every key whose rotation period has elapsed (run it from cron)")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nExample:\n  tensorseal keys set default --rotation-period 90d\n  tensorseal keys rotate-due && tensorseal rewrap --to-latest models/   # daily, from cron",
    )
    .action(async (o) => {
      const rotated = await (await openKeystore()).rotateDue();
      report(o.json, { rotated }, `rotated ${rotated.length} key(s)${list(rotated)}`);
    });
  keys
    .command("set")
    .description("key policy and metadata: minimum versions, rotation period, owner, purpose, tier")
    .argument("<name>", "key name")
    .option("--min-decryption-version <n>", "versions below it no longer open files", int)
    .option("--min-encryption-version <n>", "the primary must be at least this version", int)
    .option(
      "--rotation-period <duration>",
      "rotate with `keys rotate-due` once this has elapsed (90d, 2w, 12h, 3600s, or none)",
    )
    .option("--owner <text>", 'who answers for the key (team, mail); "" removes it')
    .option("--purpose <text>", 'what the key protects; "" removes it')
    .option(
      "--tier <tier>",
      'sensitivity tier of what it protects (.tensorseal.yaml tiers); "" removes it',
    )
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal keys set default --min-decryption-version 2 --rotation-period 90d   # after a rotation to v2\n  tensorseal keys set prod --owner ml-platform@example.com --purpose production-weights --tier confidential",
    )
    .action(async (name: string, o) => {
      const settings: KeySettings = {};
      if (o.minDecryptionVersion !== undefined)
        settings.minDecryptionVersion = o.minDecryptionVersion;
      if (o.minEncryptionVersion !== undefined)
        settings.minEncryptionVersion = o.minEncryptionVersion;
      if (o.rotationPeriod !== undefined) settings.rotationPeriod = parseDuration(o.rotationPeriod);
      for (const field of ["owner", "purpose", "tier"] as const)
        if (o[field] !== undefined) settings[field] = o[field];
      if (o.tier) {
        const { projectTiers } = await import("../project-config.js");
        const { tierPolicy } = await import("../../tiers/policy.js");
        const { metadataProblem } = await import("../../format/metadata.js");
        const why = metadataProblem("tier", o.tier);
        if (why) fail("E_USAGE", `--tier: ${why}`);
        tierPolicy(projectTiers(), o.tier);
      }
      if (Object.keys(settings).length === 0) fail("E_USAGE", "nothing to set: see --help");
      const k = await (await openKeystore()).setKey(name, settings);
      report(o.json, k, `updated ${name}: ${summary(k)}`);
    });
  versionCommand(
    keys,
    "disable",
    "stop a version from opening files (reversible; not the primary)",
    "tensorseal keys disable default 1   # files only version 1 opens stop opening (exit 9)",
    (ks, n, v) => ks.disableVersion(n, v),
  );
  versionCommand(
    keys,
    "enable",
    "re-enable a disabled version",
    "tensorseal keys enable default 1",
    (ks, n, v) => ks.enableVersion(n, v),
  );
  versionCommand(
    keys,
    "cancel-destroy",
    "cancel a scheduled destruction (the version stays disabled)",
    "tensorseal keys cancel-destroy default 1 && tensorseal keys enable default 1",
    (ks, n, v) => ks.cancelDestroy(n, v),
  );
  keys
    .command("schedule-destroy")
    .description("destroy a version's material after a waiting period (crypto-shredding)")
    .argument("<name>", "key name")
    .argument("<version>", "version number", int)
    .option("--days <n>", "waiting period in days (1..365)", int, 7)
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nFiles wrapped only under this version become unreadable for ever once it is destroyed.\nRewrap them first: tensorseal rewrap --to-latest PATHS. Until then, `keys cancel-destroy`\nundoes it; `keys purge` (or any later keystore change) destroys what is due.\n\nExample:\n  tensorseal keys rotate default && tensorseal rewrap --to-latest models/\n  tensorseal keys schedule-destroy default 1 --days 30",
    )
    .action(async (name: string, version: number, o) => {
      const k = await (await openKeystore()).scheduleDestroy(name, version, o.days);
      const v = k.versions.find((x) => x.version === version);
      report(o.json, k, `version ${version} of ${name} will be destroyed after ${v?.destroyAfter}`);
    });
  keys
    .command("purge")
    .description("destroy now every version whose waiting period has passed")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nExample:\n  tensorseal keys purge   # from cron; any other keystore change destroys what is due too",
    )
    .action(async (o) => {
      const purged = await (await openKeystore()).purge();
      report(
        o.json,
        { destroyed: purged },
        `destroyed ${purged.length} version(s)${list(purged.map((p) => `${p.name} v${p.version}`))}`,
      );
    });
}

/** The keystore, loaded with the keys layer only when a subcommand runs (start-up stays light). */
async function openKeystore(): Promise<Keystore> {
  return (await import("../keys-context.js")).openKeystore();
}

function versionCommand(
  keys: Command,
  name: string,
  description: string,
  example: string,
  run: (ks: Keystore, key: string, version: number) => Promise<KeyInfo>,
): void {
  keys
    .command(name)
    .description(description)
    .argument("<name>", "key name")
    .argument("<version>", "version number", int)
    .option("--json", "print JSON")
    .addHelpText("after", `\nExample:\n  ${example}`)
    .action(async (key: string, version: number, o) => {
      const k = await run(await openKeystore(), key, version);
      const state = k.versions.find((v) => v.version === version)?.state;
      report(o.json, k, `version ${version} of ${key} is now ${state}`);
    });
}

/** Tab-separated, each field escaped (the keystore file is data on disk like any other). */
function summary(k: KeyInfo): string {
  const states = k.versions.map((v) => `v${v.version}:${v.state}`).join(" ");
  return [
    k.name,
    `primary v${k.primaryVersion}`,
    `min decrypt v${k.minDecryptionVersion}`,
    `min encrypt v${k.minEncryptionVersion}`,
    ...(k.rotationPeriod ? [`rotation ${k.rotationPeriod}s`] : []),
    ...(k.tier ? [`tier ${k.tier}`] : []),
    ...(k.owner ? [`owner ${k.owner}`] : []),
    ...(k.purpose ? [`purpose ${k.purpose}`] : []),
    states,
  ]
    .map(printable)
    .join("\t");
}

function list(items: string[]): string {
  return items.length > 0 ? `: ${items.join(", ")}` : "";
}

function int(s: string): number {
  if (!/^\d{1,10}$/.test(s)) fail("E_USAGE", `expected a whole number, got ${JSON.stringify(s)}`);
  return Number(s);
}

/** "90d", "2w", "12h", "30m", "3600s", "3600" → seconds; "none" → null (no rotation). */
export function parseDuration(s: string): number | null {
  if (s === "none" || s === "off") return null;
  const m = /^(\d{1,10})([smhdw]?)$/.exec(s.trim());
  if (!m) fail("E_USAGE", `cannot read duration ${JSON.stringify(s)} (examples: 90d, 12h, 3600s)`);
  const unit = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as "s"];
  return Number(m[1]) * unit;
}

function report(json: boolean | undefined, value: unknown, human: string): void {
  if (json) printJson(value);
  else print(human);
}
