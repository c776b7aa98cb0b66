/**
 * The `passphrase` stanza: the file key sealed under a key stretched from a passphrase.
 *
 *   fields  = [salt (16), logN (1), wrapped (48)]
 *   wrapKey = scrypt(P = UTF-8(NFC(passphrase)), S = "tensorseal.dev/v1 passphrase\0" || salt,
 *                    N = 2^logN, r = 8, p = 1, dkLen = 32)
 *   wrapped = AES-256-GCM(wrapKey, nonce = 12 zero bytes, aad = empty, pt = file key)
 *
 * Readers refuse logN outside 10..20 before running scrypt, so a hostile header cannot make
 * the reader spend minutes or gigabytes.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { fail } from "../format/errors.js";
import { FILE_KEY_SIZE } from "../format/filekey.js";
import { expectFields, type Identity, type Recipient, type Stanza } from "../format/stanza.js";
import { passphraseKey } from "./scrypt.js";

export const PASSPHRASE_STANZA = "passphrase";
export const PASSPHRASE_SALT_SIZE = 16;
export const DEFAULT_WORK_FACTOR = 18;
export const MIN_WORK_FACTOR = 10;
export const MAX_WORK_FACTOR = 20;
const SALT_LABEL = "tensorseal.dev/v1 passphrase\0";
const WRAPPED_SIZE = FILE_KEY_SIZE + 16;
// A zero nonce is safe: every wrap draws a fresh random salt, so each wrapKey seals exactly
// one message and a (key, nonce) pair never repeats.
const ZERO_NONCE = Buffer.alloc(12);

function checkWorkFactor(logN: number): void {
  if (!Number.isInteger(logN) || logN < MIN_WORK_FACTOR || logN > MAX_WORK_FACTOR) {
    fail(
      "E_USAGE",
      `passphrase work factor must be an integer from ${MIN_WORK_FACTOR} to ${MAX_WORK_FACTOR}`,
    );
  }
}

function wrapKey(passphrase: string, salt: Uint8Array, logN: number): Promise<Buffer> {
  return passphraseKey(passphrase, SALT_LABEL, salt, logN);
}

export interface WrapPassphraseOptions {
  /** log2 of scrypt's N, 10..20; default 18. */
  readonly workFactor?: number;
  /** Fixed salt, for deterministic test vectors only. */
  readonly salt?: Uint8Array;
}

export async function wrapPassphrase(
  passphrase: string,
  fileKey: Uint8Array,
  opts: WrapPassphraseOptions = {},
): Promise<Stanza> {
  const logN = opts.workFactor ?? DEFAULT_WORK_FACTOR;
  checkWorkFactor(logN);
  if (passphrase.length === 0) fail("E_USAGE", "the passphrase is empty: choose a passphrase");
  if (fileKey.length !== FILE_KEY_SIZE) fail("E_KEY", "file key must be 32 bytes");
  const salt = Buffer.from(opts.salt ?? randomBytes(PASSPHRASE_SALT_SIZE));
  if (salt.length !== PASSPHRASE_SALT_SIZE) fail("E_USAGE", "passphrase salt must be 16 bytes");
  const key = await wrapKey(passphrase, salt, logN);
  const c = createCipheriv("aes-256-gcm", key, ZERO_NONCE);
  const wrapped = Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
  key.fill(0);
  return { type: PASSPHRASE_STANZA, fields: [salt, Buffer.from([logN]), wrapped] };
}

/** Null for other stanza types; throws for a wrong passphrase or a hostile work factor. */
export async function unwrapPassphrase(passphrase: string, s: Stanza): Promise<Buffer | null> {
  if (s.type !== PASSPHRASE_STANZA) return null;
  const [salt, logNField, wrapped] = expectFields(s, [PASSPHRASE_SALT_SIZE, 1, WRAPPED_SIZE]) as [
    Buffer,
    Buffer,
    Buffer,
  ];
  const logN = logNField[0]!;
  if (logN > MAX_WORK_FACTOR) {
    fail(
      "E_UNSUPPORTED",
      `work factor 2^${logN} exceeds the limit 2^${MAX_WORK_FACTOR}: the file may be hostile`,
    );
  }
  if (logN < MIN_WORK_FACTOR) {
    fail("E_UNSUPPORTED", `work factor 2^${logN} is below the minimum 2^${MIN_WORK_FACTOR}`);
  }
  const key = await wrapKey(passphrase, salt, logN);
  const d = createDecipheriv("aes-256-gcm", key, ZERO_NONCE);
  d.setAuthTag(wrapped.subarray(FILE_KEY_SIZE));
  try {
    return Buffer.concat([d.update(wrapped.subarray(0, FILE_KEY_SIZE)), d.final()]);
  } catch {
    return fail("E_DECRYPT", "passphrase does not open this file: check the passphrase");
  } finally {
    key.fill(0);
  }
}

/** `opts` may be a bare work factor (logN) for convenience. */
export function passphraseRecipient(
  passphrase: string,
  options: WrapPassphraseOptions | number = {},
): Recipient {
  const opts = typeof options === "number" ? { workFactor: options } : options;
  if (opts.workFactor !== undefined) checkWorkFactor(opts.workFactor);
  if (passphrase.length === 0) fail("E_USAGE", "the passphrase is empty: choose a passphrase");
  return {
    id: PASSPHRASE_STANZA,
    wrap: (fileKey) => wrapPassphrase(passphrase, fileKey, opts),
    matches: (s) => s.type === PASSPHRASE_STANZA,
  };
}

export function passphraseIdentity(passphrase: string): Identity {
  return { id: PASSPHRASE_STANZA, unwrap: (s) => unwrapPassphrase(passphrase, s) };
}
