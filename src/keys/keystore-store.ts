/**
 * Reading and writing keystore.json with a known root key (spec/KEYSTORE.md): KEK material
 * sealing, the document MAC, unlocking the root from a passphrase or root key file, and the
 * authenticated load that migrates version 1 documents in memory.
 *
 *   version material: AES-256-GCM(root, random nonce,
 *                     aad = "tensorseal.dev/v1 keystore kek\0" || name || u32be(version))
 *   mac: HMAC-SHA-256(HKDF-Expand-SHA-512(root, "tensorseal.dev/v1 keystore mac", 32),
 *                     canonicalJson(document without "mac"))
 */
import { fail } from "../format/errors.js";
import { constantTimeEqual, gcmOpen, gcmSeal, hmac, randomBytes } from "../format/primitives.js";
import { canonicalJson } from "./canonical-json.js";
import {
  b64,
  type KeystoreDoc,
  parseDocument,
  parseEnvelope,
  type RootDoc,
} from "./keystore-doc.js";
import { keystorePath, readKeystoreFile } from "./keystore-file.js";
import { DEFAULT_WORK_FACTOR } from "./passphrase.js";
import {
  checkMatches,
  keyCheckValue,
  keystoreMacKey,
  openRootWithPassphrase,
  readRootKeyFile,
  sealRootWithPassphrase,
} from "./root-key.js";

export type KeystoreUnlock = { passphrase: string; workFactor?: number } | { rootKeyFile: string };
export type Body = Omit<KeystoreDoc, "mac">;
export type Materials = Map<string, Map<number, Buffer>>;

const KEK_AAD_LABEL = Buffer.from("tensorseal.dev/v1 keystore kek\0", "ascii");

function kekAad(name: string, version: number): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32BE(version);
  return Buffer.concat([KEK_AAD_LABEL, Buffer.from(name, "utf8"), v]);
}

export function sealMaterial(root: Buffer, name: string, version: number, material: Buffer) {
  // Random 96-bit nonce: one per version and per root rotation, far below GCM's 2^32 bound.
  const nonce = randomBytes(12);
  const ct = gcmSeal(root, nonce, material, kekAad(name, version));
  return { nonce: b64(nonce), material: b64(ct) };
}

function openMaterial(root: Buffer, name: string, version: number, nonce: string, sealed: string) {
  const ct = Buffer.from(sealed, "base64");
  const material = gcmOpen(root, Buffer.from(nonce, "base64"), ct, kekAad(name, version));
  // Null only if the MAC check was passed by a forged file: fail closed anyway.
  return (
    material ??
    fail(
      "E_KEYSTORE",
      `key ${name} v${version} does not decrypt: restore the keystore from a backup`,
    )
  );
}

function computeMac(root: Buffer, body: unknown): Buffer {
  const key = keystoreMacKey(root);
  try {
    return hmac("sha256", key, Buffer.from(canonicalJson(body), "utf8"));
  } finally {
    key.fill(0);
  }
}

export function serialise(root: Buffer, body: Body): Buffer {
  const doc: KeystoreDoc = { ...body, mac: b64(computeMac(root, body)) };
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`, "utf8");
}

export function missing(home: string): never {
  return fail("E_KEYSTORE", `no keystore in ${home}: run \`tensorseal init\``);
}

/** The root document for `root` sealed as `unlock` says (a key file must hold `root`). */
export async function rootDocFor(root: Buffer, unlock: KeystoreUnlock): Promise<RootDoc> {
  if ("rootKeyFile" in unlock) return { kind: "key-file", check: b64(keyCheckValue(root)) };
  const s = await sealRootWithPassphrase(
    root,
    unlock.passphrase,
    unlock.workFactor ?? DEFAULT_WORK_FACTOR,
  );
  return {
    kind: "passphrase",
    kdf: "scrypt",
    logN: s.logN,
    r: s.r,
    p: s.p,
    salt: b64(s.salt),
    nonce: b64(s.nonce),
    sealed: b64(s.sealed),
  };
}

async function unlockRoot(home: string, root: RootDoc, unlock: KeystoreUnlock): Promise<Buffer> {
  if (root.kind === "passphrase") {
    if (!("passphrase" in unlock)) {
      fail(
        "E_KEYSTORE",
        `the keystore in ${home} is sealed by a passphrase, not a root key file: unset TENSORSEAL_ROOT_KEY_FILE and give the passphrase`,
      );
    }
    const key = await openRootWithPassphrase(
      {
        logN: root.logN,
        r: root.r,
        p: root.p,
        salt: Buffer.from(root.salt, "base64"),
        nonce: Buffer.from(root.nonce, "base64"),
        sealed: Buffer.from(root.sealed, "base64"),
      },
      unlock.passphrase,
    );
    return key ?? fail("E_KEYSTORE", `wrong passphrase for the keystore in ${home}: try again`);
  }
  if (!("rootKeyFile" in unlock)) {
    fail(
      "E_KEYSTORE",
      `the keystore in ${home} uses a root key file: set TENSORSEAL_ROOT_KEY_FILE to it`,
    );
  }
  const key = await readRootKeyFile(unlock.rootKeyFile);
  if (!checkMatches(key, Buffer.from(root.check, "base64"))) {
    key.fill(0);
    fail(
      "E_KEYSTORE",
      `root key file ${unlock.rootKeyFile} does not match the keystore in ${home}: use the file the keystore was created with`,
    );
  }
  return key;
}

export interface Loaded {
  root: Buffer;
  body: Body;
  materials: Materials;
}

/**
 * Reads, authenticates and decrypts the file: with a known root, or by unlocking it. `onBadMac`
 * words the error when the MAC does not match (an edited file, or a wrong recovered root).
 */
export async function load(
  home: string,
  root: Buffer | null,
  unlock?: KeystoreUnlock,
  onBadMac?: () => never,
): Promise<Loaded> {
  const bytes = (await readKeystoreFile(home)) ?? missing(home);
  const where = keystorePath(home);
  const env = parseEnvelope(bytes, where);
  const key = root ?? (await unlockRoot(home, env.root, unlock!));
  const { mac: _mac, ...rawBody } = env.raw;
  let expected: Buffer | null = null;
  try {
    expected = computeMac(key, rawBody);
  } catch {
    expected = null; // not canonicalisable: cannot have been written by tensorseal
  }
  if (!expected || !constantTimeEqual(expected, env.mac)) {
    if (!root) key.fill(0);
    onBadMac?.();
    fail(
      "E_KEYSTORE",
      `keystore.json was modified outside tensorseal (its MAC does not match): restore ${where} from a backup`,
    );
  }
  const doc = parseDocument(env, where);
  const materials: Materials = new Map();
  for (const k of doc.keys) {
    const m = new Map<number, Buffer>();
    for (const v of k.versions) {
      if (v.material && v.nonce)
        m.set(v.version, openMaterial(key, k.name, v.version, v.nonce, v.material));
    }
    materials.set(k.name, m);
  }
  const { mac: _m, ...body } = doc;
  return { root: key, body, materials };
}

/**
 * Whether `root` is the root the keystore in `home` is sealed under: the document MAC
 * recomputed with it, compared in constant time. Nothing is decrypted or written (a rehearsal
 * of the root shares needs neither the passphrase nor the KEKs).
 */
export async function rootOpensKeystore(
  home: string,
  root: Buffer,
): Promise<{ matches: boolean; id: unknown }> {
  const bytes = (await readKeystoreFile(home)) ?? missing(home);
  const env = parseEnvelope(bytes, keystorePath(home));
  const { mac: _mac, ...rawBody } = env.raw;
  let expected: Buffer | null = null;
  try {
    expected = computeMac(root, rawBody);
  } catch {
    expected = null;
  }
  return { matches: expected !== null && constantTimeEqual(expected, env.mac), id: env.raw.id };
}

export function wipe(materials: Materials): void {
  for (const m of materials.values()) for (const b of m.values()) b.fill(0);
  materials.clear();
}

/** Re-seals every version's material under `root` (root rotation; nothing else changes). */
export function resealAll(root: Buffer, body: Body, materials: Materials): void {
  for (const k of body.keys) {
    for (const v of k.versions) {
      const m = materials.get(k.name)?.get(v.version);
      if (!m) continue;
      const s = sealMaterial(root, k.name, v.version, m);
      v.nonce = s.nonce;
      v.material = s.material;
    }
  }
}
