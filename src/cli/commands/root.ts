/**
 * `tensorseal root ...`: flags and help; the implementations (actions/root.ts) load when one runs.
 */
import type { Command, OptionValues } from "commander";

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
    .action(async (o: OptionValues) => (await import("../actions/root.js")).splitRoot(o));
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
    .action(async (paths: string[], o: OptionValues) =>
      (await import("../actions/root.js")).recoverRoot(paths, o),
    );
  root
    .command("shares")
    .description("the root key's shares: test recoveries")
    .command("verify")
    .description(
      "test-recover the root from shares in memory: check they rebuild the current root, record the rehearsal (never the key)",
    )
    .argument("<shares...>", "share files (at least the split's threshold)")
    .option("--json", "print JSON: {verified, split, shares, threshold, total, record}")
    .addHelpText(
      "after",
      "\nNeeds no passphrase: the rebuilt key is checked against keystore.json's MAC, then wiped.\nThe outcome (split, share indices, time; success or failure) goes to root-rehearsals.json\nnext to the keystore; `doctor` reports splits never test-recovered or not for --share-days.\n\nExample:\n  tensorseal root shares verify root-share-1-of-5.txt root-share-3-of-5.txt root-share-4-of-5.txt",
    )
    .action(async (paths: string[], o: OptionValues) =>
      (await import("../actions/root.js")).verifyShares(paths, o),
    );
  root
    .command("rotate")
    .description("new root key; all KEK material re-sealed under it (artifacts untouched)")
    .option("-o, --output <file>", "for a key-file keystore: write the new root key here")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nShares from earlier `root split` runs stop working: split again afterwards.\nA passphrase keystore is re-sealed under TENSORSEAL_NEW_KEYSTORE_PASSPHRASE, or the current one.\n\nExamples:\n  tensorseal root rotate && tensorseal root split --shares 5 --threshold 3 -o /media/usb\n  TENSORSEAL_ROOT_KEY_FILE=/run/secrets/root.key tensorseal root rotate -o /run/secrets/root-2.key",
    )
    .action(async (o: OptionValues) => (await import("../actions/root.js")).rotateRoot(o));
}
