/** `tensorseal root split|recover|rotate`: the keystore root key (flags: commands/root.ts). */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { OptionValues } from "commander";
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
import { forgetSplits, recordSplit, rehearsalsPath } from "../../keys/root-rehearsals.js";
import { verifyRootShares } from "../../keys/root-verify.js";
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

export async function splitRoot(o: OptionValues): Promise<void> {
  const ks = await openKeystore();
  const shares = await ks.splitRoot(o.shares, o.threshold);
  const files: string[] = [];
  for (const s of shares) {
    const path = join(o.outputDir, `root-share-${s.index}-of-${s.shares}.txt`);
    // Atomic and exclusive: never half a share, never over a share of an earlier split.
    await writeFileAtomic(path, formatShare(s), { exclusive: true });
    files.push(path);
  }
  await recordSplit(homeDir(), {
    split: shares[0]!.splitId,
    at: clock().toISOString(),
    shares: shares.length,
    threshold: o.threshold,
  });
  if (o.json) printJson({ keystore: ks.id, threshold: o.threshold, files });
  else {
    say(`wrote ${files.length} shares (any ${o.threshold} recover the root key):`);
    for (const f of files) process.stderr.write(`${printable(f)}\n`);
  }
}

export async function recoverRoot(paths: string[], o: OptionValues): Promise<void> {
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
}

export async function rotateRoot(o: OptionValues): Promise<void> {
  const unlock = await keystoreUnlock();
  const ks = await openKeystore();
  let to: NewRoot;
  if ("rootKeyFile" in unlock) {
    if (!o.output) fail("E_USAGE", "this keystore uses a root key file: pass -o NEW_ROOT_KEY_FILE");
    to = { newRootKeyFile: o.output };
  } else {
    to = process.env.TENSORSEAL_NEW_KEYSTORE_PASSPHRASE ? await newPassphrase() : unlock;
  }
  await ks.rotateRoot(to);
  // The shares of earlier splits no longer rebuild the root: doctor stops asking for them.
  await forgetSplits(homeDir());
  if (o.json) printJson({ rotated: true, rootKeyFile: o.output ?? null });
  else
    say(
      `rotated the root key${o.output ? `; the new key is in ${o.output} (point TENSORSEAL_ROOT_KEY_FILE at it)` : ""}; earlier root shares no longer work: split again`,
    );
}

/** `root shares verify`: a test recovery, recorded; the root itself is never shown or kept. */
export async function verifyShares(paths: string[], o: OptionValues): Promise<void> {
  const home = homeDir();
  const v = await verifyRootShares(home, paths, clock());
  const record = rehearsalsPath(home);
  if (o.json) printJson({ verified: true, ...v, record });
  else
    say(
      `shares ${v.shares.join(", ")} of split ${v.split} (any ${v.threshold} of ${v.total}) rebuild the current root key; the test recovery is recorded in ${record}`,
    );
}

function clock(): Date {
  return keystoreOptions().now?.() ?? new Date();
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
