import type { Command } from "commander";
import { openKeystore } from "../keys-context.js";
import { printJson } from "../options.js";

export function registerKeys(program: Command): void {
  const keys = program
    .command("keys")
    .description("manage key-encryption keys (KEKs) in the local keystore");
  keys
    .command("create")
    .argument("<name>", "key name ([A-Za-z0-9._-], up to 128 characters)")
    .option("--json", "print JSON")
    .action(async (name: string, o) => {
      const ks = await openKeystore();
      await ks.createKey(name);
      report(o.json, ks.showKey(name), `created key ${name} (version 1)`);
    });
  keys
    .command("list")
    .option("--json", "print JSON")
    .action(async (o) => {
      const list = (await openKeystore()).listKeys();
      if (o.json) return printJson(list);
      for (const k of list)
        process.stdout.write(
          `${k.name}\tprimary v${k.primaryVersion}\t${k.versions.length} version(s)\n`,
        );
    });
  keys
    .command("show")
    .argument("<name>")
    .option("--json", "print JSON")
    .action(async (name: string, o) => {
      const k = (await openKeystore()).showKey(name);
      report(o.json, k, JSON.stringify(k, null, 2));
    });
  keys
    .command("rotate")
    .argument("<name>")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nNew files use the new version; run `tensorseal rewrap --to-latest FILES` to move old ones.",
    )
    .action(async (name: string, o) => {
      const ks = await openKeystore();
      await ks.rotateKey(name);
      const k = ks.showKey(name);
      report(o.json, k, `rotated ${name}: primary version is now ${k.primaryVersion}`);
    });
}

function report(json: boolean | undefined, value: unknown, human: string): void {
  if (json) printJson(value);
  else process.stdout.write(`${human}\n`);
}
