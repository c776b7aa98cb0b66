/**
 * The service root key: --root-key-file (or TENSORSEAL_SERVICE_ROOT_KEY_FILE), --root-shares,
 * --root-sealed (an HSM/KMS unwraps it) or --dev.
 */
import { join } from "node:path";
import { fail } from "../../../format/errors.js";
import {
  type DevTls,
  devRootKey,
  type RootRecovery,
  type RootUnseal,
  readServiceRootKey,
  recoverServiceRoot,
  unsealServiceRoot,
} from "../../../service/index.js";
import type { ServeFlags } from "../../commands/serve/flags.js";

export interface RootSettings {
  /** The caller zeroes it once buildServer has derived its keys. */
  readonly root: Buffer;
  /** Set when the root was rebuilt from shares (buildServer audits it as root.recover). */
  readonly recovery: RootRecovery | null;
  /** Set when an HSM/KMS unwrapped the root (buildServer checks its custody, audits root.unseal). */
  readonly unseal: RootUnseal | null;
}

export async function rootSettings(o: ServeFlags, dev: DevTls | null): Promise<RootSettings> {
  const rootFile: string | undefined =
    o.rootKeyFile ?? process.env.TENSORSEAL_SERVICE_ROOT_KEY_FILE;
  const given = [o.rootShares, o.rootKeyFile, o.rootSealed].filter(Boolean).length;
  if (given > 1)
    fail(
      "E_USAGE",
      "--root-key-file, --root-shares and --root-sealed exclude each other: give one",
    );
  if (o.rootSealed) {
    // Fail closed: an unreachable or refusing HSM/KMS stops the start (E_PROVIDER).
    const { root, unseal } = await unsealServiceRoot(o.rootSealed);
    return { root, recovery: null, unseal };
  }
  if (!rootFile && !dev && !o.rootShares)
    fail(
      "E_USAGE",
      "no service root key: pass --root-key-file FILE (32 bytes or 64 hex), --root-shares FILE,FILE,... or --root-sealed FILE",
    );
  const recovered = o.rootShares
    ? await recoverServiceRoot(String(o.rootShares).split(",").filter(Boolean))
    : null;
  const root = recovered
    ? recovered.root
    : rootFile
      ? await readServiceRootKey(rootFile)
      : await devRootKey(join(dev!.dir, "root.key"));
  return { root, recovery: recovered?.recovery ?? null, unseal: null };
}
