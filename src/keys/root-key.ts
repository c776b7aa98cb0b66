/**
 * The keystore's 256-bit root key and the two ways it is unlocked:
 *  - passphrase: wrapKey = scrypt(UTF-8(NFC(passphrase)),
 *      "tensorseal.dev/v1 keystore passphrase\0" || salt16, 2^logN, r, p, 32), then
 *      sealed = AES-256-GCM(wrapKey, random nonce, aad "tensorseal.dev/v1 keystore root\0", root)
 *  - key file: the root itself comes from a file (32 raw bytes or 64 hex characters); the
 *    keystore keeps only check = HMAC-SHA-256(root, "tensorseal.dev/v1 keystore check").
 */
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../engine/output.js";
import { fail, isTensorSealError } from "../format/errors.js";
import { hkdfExpand } from "../format/hkdf.js";
import { constantTimeEqual, gcmOpen, gcmSeal, hmac, randomBytes } from "../format/primitives.js";
import { MAX_WORK_FACTOR, MIN_WORK_FACTOR } from "./passphrase.js";
import { passphraseKey } from "./scrypt.js";

export const ROOT_KEY_SIZE = 32;
const KDF_SALT_LABEL = "tensorseal.dev/v1 keystore passphrase\0";
const ROOT_AAD = Buffer.from("tensorseal.dev/v1 keystore root\0", "ascii");
const CHECK_LABEL = "tensorseal.dev/v1 keystore check";
const MAC_LABEL = "tensorseal.dev/v1 keystore mac";
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;

export interface PassphraseSeal {
  readonly logN: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly nonce: Buffer;
  readonly sealed: Buffer;
}

export function generateRootKey(): Buffer {
  return randomBytes(ROOT_KEY_SIZE);
}

function rootWrapKey(passphrase: string, salt: Buffer, logN: number, r: number, p: number) {
  return passphraseKey(passphrase, KDF_SALT_LABEL, salt, logN, r, p);
}

export async function sealRootWithPassphrase(
  root: Buffer,
  passphrase: string,
  logN: number,
): Promise<PassphraseSeal> {
  if (!Number.isInteger(logN) || logN < MIN_WORK_FACTOR || logN > MAX_WORK_FACTOR) {
    fail(
      "E_USAGE",
      `keystore work factor must be an integer from ${MIN_WORK_FACTOR} to ${MAX_WORK_FACTOR}`,
    );
  }
  if (passphrase.length === 0) fail("E_USAGE", "the keystore passphrase must not be empty");
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const key = await rootWrapKey(passphrase, salt, logN, SCRYPT_R, SCRYPT_P);
  const sealed = gcmSeal(key, nonce, root, ROOT_AAD);
  key.fill(0);
  return { logN, r: SCRYPT_R, p: SCRYPT_P, salt, nonce, sealed };
}

/** The root key, or null when the passphrase is wrong (callers word the error). */
export async function openRootWithPassphrase(
  seal: PassphraseSeal,
  passphrase: string,
): Promise<Buffer | null> {
  // Bounded before scrypt: the parameters are read from a file that is not yet authenticated.
  if (seal.logN < MIN_WORK_FACTOR || seal.logN > MAX_WORK_FACTOR) {
    fail(
      "E_UNSUPPORTED",
      `keystore work factor 2^${seal.logN} is outside 2^${MIN_WORK_FACTOR}..2^${MAX_WORK_FACTOR}`,
    );
  }
  if (seal.r !== SCRYPT_R || seal.p !== SCRYPT_P) {
    fail(
      "E_UNSUPPORTED",
      `keystore scrypt parameters r=${seal.r} p=${seal.p} are not supported (r=8, p=1)`,
    );
  }
  const key = await rootWrapKey(passphrase, seal.salt, seal.logN, seal.r, seal.p);
  try {
    return gcmOpen(key, seal.nonce, seal.sealed, ROOT_AAD);
  } finally {
    key.fill(0);
  }
}

/** Reads a root key file: exactly 32 raw bytes, or 64 hex characters and an optional newline. */
export async function readRootKeyFile(path: string): Promise<Buffer> {
  let data: Buffer;
  try {
    data = readFileSync(path); // synchronous: no thread pool trip for 32 bytes (issue 11)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    return fail(
      "E_KEYSTORE",
      `cannot read the root key file ${path} (${code}): check TENSORSEAL_ROOT_KEY_FILE`,
    );
  }
  try {
    if (data.length === ROOT_KEY_SIZE) return Buffer.from(data);
    let text = data.toString("latin1");
    if (text.endsWith("\r\n")) text = text.slice(0, -2);
    else if (text.endsWith("\n")) text = text.slice(0, -1);
    if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, "hex");
    return fail(
      "E_KEY",
      `root key file ${path} must hold 32 raw bytes or 64 hex characters (it has ${data.length} bytes): generate one with \`openssl rand -hex 32\``,
    );
  } finally {
    data.fill(0);
  }
}

export function keyCheckValue(root: Uint8Array): Buffer {
  return hmac("sha256", root, Buffer.from(CHECK_LABEL, "ascii"));
}

export function checkMatches(root: Uint8Array, stored: Buffer): boolean {
  const kcv = keyCheckValue(root);
  return constantTimeEqual(kcv, stored);
}

/** The key of the keystore file's MAC, separate from the root by HKDF. */
export function keystoreMacKey(root: Uint8Array): Buffer {
  return hkdfExpand("sha512", root, Buffer.from(MAC_LABEL, "ascii"), 32);
}

/** Writes a new root key file (64 hex characters, mode 0600); refuses to replace a file. */
export async function writeNewRootKeyFile(path: string, root: Uint8Array): Promise<void> {
  try {
    await writeFileAtomic(path, `${Buffer.from(root).toString("hex")}\n`, { exclusive: true });
  } catch (e) {
    const code = isTensorSealError(e) ? e.code : ((e as NodeJS.ErrnoException).code ?? "error");
    return fail(
      code === "E_USAGE" ? "E_USAGE" : "E_IO",
      `cannot create the root key file ${path} (${code === "E_USAGE" ? "it exists" : code}): choose a path that does not exist`,
    );
  }
}
