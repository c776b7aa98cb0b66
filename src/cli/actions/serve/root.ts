/** The service root key: --root-key-file (or TENSORSEAL_SERVICE_ROOT_KEY_FILE), --root-shares or --dev. */
import { join } from "node:path";
import { fail } from "../../../format/errors.js";
import {
  type DevTls,
  devRootKey,
  type RootRecovery,
  readServiceRootKey,
  recoverServiceRoot,
} from "../../../service/index.js";
import type { ServeFlags } from "../../commands/serve/flags.js";

export interface RootSettings {
  /** The caller zeroes it once buildServer has derived its keys. */
  readonly root: Buffer;
  /** Set when the root was rebuilt from shares (buildServer audits it as root.recover). */
  readonly recovery: RootRecovery | null;
}

export async function rootSettings(o: ServeFlags, dev: DevTls | null): Promise<RootSettings> {
  const rootFile: string | undefined =
    o.rootKeyFile ?? process.env.TENSORSEAL_SERVICE_ROOT_KEY_FILE;
  if (o.rootShares && o.rootKeyFile)
    fail("E_USAGE", "--root-shares and --root-key-file exclude each other: give one");
  if (!rootFile && !dev && !o.rootShares)
    fail(
      "E_USAGE",
      "no service root key: pass --root-key-file FILE (32 bytes or 64 hex) or --root-shares FILE,FILE,...",
    );
  const recovered = o.rootShares
    ? await recoverServiceRoot(String(o.rootShares).split(",").filter(Boolean))
    : null;
  const root = recovered
    ? recovered.root
    : rootFile
      ? await readServiceRootKey(rootFile)
      : await devRootKey(join(dev!.dir, "root.key"));
  return { root, recovery: recovered?.recovery ?? null };
}
