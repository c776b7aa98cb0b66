/**
 * The server's root key and what is derived from it. Every KEK version lives in the database
 * sealed under a key derived from the root (AES-256-GCM, AAD binding server id, name and
 * version), so a copy of the database alone releases nothing, and a sealed version cannot be
 * moved to another key name or version.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { ByteWriter } from "../../format/bytes.js";
import { fail } from "../../format/errors.js";
import { hkdfExpand } from "../../format/hkdf.js";

const MATERIAL_INFO = "tensorseal.dev/v1 service material";
const SIGNING_INFO = "tensorseal.dev/v1 service audit signing key";
const HMAC_INFO = "tensorseal.dev/v1 service audit hmac";
const CHECK_INFO = "tensorseal.dev/v1 service root check";

export interface RootKeys {
  /** Seals KEK material and the audit signing key. */
  readonly sealing: Buffer;
  /** Keys the HMAC of secret-derived audit fields (an unknown token's fingerprint). */
  readonly auditHmac: Buffer;
  /** Public check value: refuses to start with another root than the one the DB was made with. */
  readonly check: string;
}

export function deriveRootKeys(root: Uint8Array): RootKeys {
  if (root.length !== 32) fail("E_KEY", "the service root key must be 32 bytes");
  return {
    sealing: hkdfExpand("sha256", root, Buffer.from(MATERIAL_INFO), 32),
    auditHmac: hkdfExpand("sha256", root, Buffer.from(HMAC_INFO), 32),
    check: hkdfExpand("sha256", root, Buffer.from(CHECK_INFO), 32).toString("hex"),
  };
}

function aad(serverId: string, what: string, version: number): Buffer {
  return new ByteWriter()
    .raw(Buffer.from(`${MATERIAL_INFO}\0`))
    .str16(serverId)
    .str16(what)
    .u32(version)
    .finish();
}

/** base64(nonce 12 || ciphertext || tag 16). */
export function sealSecret(
  key: Buffer,
  serverId: string,
  what: string,
  version: number,
  secret: Uint8Array,
): string {
  // Random nonce: a handful of seals per key version and per server over its lifetime.
  const nonce = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, nonce).setAAD(aad(serverId, what, version));
  return Buffer.concat([nonce, c.update(secret), c.final(), c.getAuthTag()]).toString("base64");
}

export function openSecret(
  key: Buffer,
  serverId: string,
  what: string,
  version: number,
  sealed: string,
): Buffer {
  const b = Buffer.from(sealed, "base64");
  if (b.length < 28) fail("E_KEYSTORE", `sealed ${what} v${version} is truncated`);
  const d = createDecipheriv("aes-256-gcm", key, b.subarray(0, 12)).setAAD(
    aad(serverId, what, version),
  );
  d.setAuthTag(b.subarray(b.length - 16));
  try {
    return Buffer.concat([d.update(b.subarray(12, b.length - 16)), d.final()]);
  } catch {
    return fail("E_KEYSTORE", `sealed ${what} v${version} does not open under the root key`);
  }
}

export const SIGNING_KEY_NAME = SIGNING_INFO;
