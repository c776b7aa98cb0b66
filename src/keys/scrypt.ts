/** Promise wrapper around node:crypto's scrypt with the memory limit sized to the parameters. */
import { scrypt as scryptCb } from "node:crypto";

export function scrypt(
  password: Uint8Array,
  salt: Uint8Array,
  logN: number,
  r: number,
  p: number,
  keylen: number,
): Promise<Buffer> {
  const N = 2 ** logN;
  // OpenSSL needs 128*N*r bytes for V plus buffers; 256*N*r leaves headroom without opening
  // the door to attacker-chosen huge N (callers bound logN first).
  const maxmem = 256 * N * r;
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, { N, r, p, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** A passphrase as bytes: UTF-8 after NFC, so the same words typed on any OS give one key. */
export function passphraseBytes(passphrase: string): Buffer {
  return Buffer.from(passphrase.normalize("NFC"), "utf8");
}

/** scrypt(NFC passphrase, label || salt) → 32-byte wrapping key; the passphrase copy is wiped. */
export async function passphraseKey(
  passphrase: string,
  label: string,
  salt: Uint8Array,
  logN: number,
  r = 8,
  p = 1,
): Promise<Buffer> {
  const pw = passphraseBytes(passphrase);
  try {
    return await scrypt(pw, Buffer.concat([Buffer.from(label, "ascii"), salt]), logN, r, p, 32);
  } finally {
    pw.fill(0);
  }
}
