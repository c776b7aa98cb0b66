/**
 * The keystore as doctor sees it: key metadata (never material) and how the root is protected.
 * Doctor never prompts: with TENSORSEAL_ROOT_KEY_FILE or TENSORSEAL_KEYSTORE_PASSPHRASE in the
 * environment the keystore is opened as every command opens it (its MAC checked); without, the
 * same strict parser reads the metadata unauthenticated, and a `keystore.unverified` note says so.
 */
import { type KeyInfo, Keystore, type KeystoreOptions } from "../keys/index.js";
import { keyInfo } from "../keys/keystore.js";
import { parseDocument, parseEnvelope, type RootDoc } from "../keys/keystore-doc.js";
import { keystorePath, readKeystoreFile } from "../keys/keystore-file.js";

export interface KeystoreView {
  readonly path: string;
  /** The keystore's id (named in its root shares). */
  readonly id: string;
  readonly root: RootDoc;
  readonly keys: readonly KeyInfo[];
  /** True when the MAC was checked (the keystore was unlocked). */
  readonly verified: boolean;
  /** The unlocked keystore (verified only), to open sealed manifests; the caller closes it. */
  readonly keystore: Keystore | null;
}

/** Null when there is no keystore in `home`. */
export async function readKeystoreView(
  home: string,
  opts: KeystoreOptions,
): Promise<KeystoreView | null> {
  const bytes = await readKeystoreFile(home);
  if (bytes === null) return null;
  const path = keystorePath(home);
  const env = parseEnvelope(bytes, path);
  const keyFile = process.env.TENSORSEAL_ROOT_KEY_FILE;
  const passphrase = process.env.TENSORSEAL_KEYSTORE_PASSPHRASE;
  if (keyFile || passphrase) {
    const unlock = keyFile ? { rootKeyFile: keyFile } : { passphrase: passphrase! };
    const ks = await Keystore.open(home, unlock, opts);
    return { path, id: ks.id, root: env.root, keys: ks.listKeys(), verified: true, keystore: ks };
  }
  const doc = parseDocument(env, path);
  return {
    path,
    id: doc.id,
    root: env.root,
    keys: doc.keys.map(keyInfo),
    verified: false,
    keystore: null,
  };
}
