import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { writeFileAtomic } from "../../engine/output.js";
import { fail } from "../../format/errors.js";
import { printable } from "../../format/printable.js";
import {
  combineRootShares,
  formatShare,
  Keystore,
  type NewRoot,
  parseShare,
} from "../../keys/index.js";
import {
  homeDir,
  keystoreOptions,
  keystoreUnlock,
  openKeystore,
  workFactor,
} from "../keys-context.js";
import { printJson } from "../options.js";
import { say } from "../output.js";
import { promptHidden } from "../terminal.js";

export function registerRoot(program: Command): void {
  const root = program
    .command("root")
    .description("the keystore's root key: M-of-N recovery shares, recovery, rotation");
  root
    .command("split")
    .description("split the root key into N share files, any M of which rebuild it")
    .requiredOption("--shares <n>", "number of shares (2..255)", Number)
    .requiredOption("--threshold <m>", "shares needed to recover (2..N)", Number)
    .option("-o, --output-dir <dir>", "directory for the root-share-I-of-N.txt files", ".")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nGive each share to a different custodian; store them offline. A later `root rotate`\nmakes these shares useless (split again after it).\n\nExample:\n  tensorseal root split --shares 5 --threshold 3 -o /media/usb",
    )
    .action(async (o) => {
      const ks = await openKeystore();
      const shares = await ks.splitRoot(o.shares, o.threshold);
      const files: string[] = [];
      for (const s of shares) {
        const path = join(o.outputDir, `root-share-${s.index}-of-${s.shares}.txt`);
        // Atomic and exclusive: never half a share, never over a share of an earlier split.
        await writeFileAtomic(path, formatShare(s), { exclusive: true });
        files.push(path);
      }
      if (o.json) printJson({ keystore: ks.id, threshold: o.threshold, files });
      else {
        say(`wrote ${files.length} shares (any ${o.threshold} recover the root key):`);
        for (const f of files) process.stderr.write(`${printable(f)}\n`);
      }
    });
  root
    .command("recover")
    .description("rebuild the root key from shares and re-seal the keystore (new passphrase or -o)")
    .argument("<shares...>", "share files")
    .option("-o, --output <file>", "write the root key to this new file instead of a passphrase")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nThe rebuilt key is checked against keystore.json before anything is written.\nThe new passphrase comes from TENSORSEAL_NEW_KEYSTORE_PASSPHRASE or a prompt.\n\nExamples:\n  tensorseal root recover root-share-1-of-5.txt root-share-3-of-5.txt root-share-4-of-5.txt\n  tensorseal root recover root-share-*-of-5.txt -o /run/secrets/tensorseal-root.key",
    )
    .action(async (paths: string[], o) => {
      const shares = [];
      for (const p of paths) shares.push(parseShare(await readText(p), p));
      const key = await combineRootShares(shares);
      const to: NewRoot = o.output ? { newRootKeyFile: o.output } : await newPassphrase();
      const ks = await Keystore.recover(homeDir(), key, to, keystoreOptions());
      ks.close();
      if (o.json) printJson({ recovered: true, rootKeyFile: o.output ?? null });
      else
        say(
          `recovered the root key of the keystore in ${homeDir()}${o.output ? `; root key written to ${o.output} (set TENSORSEAL_ROOT_KEY_FILE to it)` : "; it is now sealed by the new passphrase"}`,
        );
    });
  root
    .command("rotate")
    .description("new root key; all KEK material re-sealed under it (artifacts untouched)")
    .option("-o, --output <file>", "for a key-file keystore: write the new root key here")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nShares from earlier `root split` runs stop working: split again afterwards.\nA passphrase keystore is re-sealed under TENSORSEAL_NEW_KEYSTORE_PASSPHRASE, or the current one.\n\nExamples:\n  tensorseal root rotate && tensorseal root split --shares 5 --threshold 3 -o /media/usb\n  TENSORSEAL_ROOT_KEY_FILE=/run/secrets/root.key tensorseal root rotate -o /run/secrets/root-2.key",
    )
    .action(async (o) => {
      const unlock = await keystoreUnlock();
      const ks = await openKeystore();
      let to: NewRoot;
      if ("rootKeyFile" in unlock) {
        if (!o.output)
          fail("E_USAGE", "this keystore uses a root key file: pass -o NEW_ROOT_KEY_FILE");
        to = { newRootKeyFile: o.output };
      } else {
        to = process.env.TENSORSEAL_NEW_KEYSTORE_PASSPHRASE ? await newPassphrase() : unlock;
      }
      await ks.rotateRoot(to);
      if (o.json) printJson({ rotated: true, rootKeyFile: o.output ?? null });
      else
        say(
          `rotated the root key${o.output ? `; the new key is in ${o.output} (point TENSORSEAL_ROOT_KEY_FILE at it)` : ""}; earlier root shares no longer work: split again`,
        );
    });
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    return fail("E_IO", `cannot read ${path} (${(e as NodeJS.ErrnoException).code})`);
  }
}

async function newPassphrase(): Promise<NewRoot> {
  const wf = workFactor();
  const extra = wf ? { workFactor: wf } : {};
  const env = process.env.TENSORSEAL_NEW_KEYSTORE_PASSPHRASE;
  if (env) return { passphrase: env, ...extra };
  const p = await promptHidden("New keystore passphrase: ");
  if ((await promptHidden("Repeat passphrase: ")) !== p)
    fail("E_USAGE", "the passphrases do not match");
  if (p.length === 0) fail("E_USAGE", "the passphrase must not be empty");
  return { passphrase: p, ...extra };
}
