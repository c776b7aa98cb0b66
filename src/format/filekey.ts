/**
 * Keys derived from the 256-bit file key (spec/FORMAT.md §1.3). Separate labels keep the header
 * MAC key and the payload input key independent.
 */
import { fail } from "./errors.js";
import { hkdfExpand } from "./hkdf.js";
import { constantTimeEqual, hmac, randomBytes } from "./primitives.js";

export const FILE_KEY_SIZE = 32;
export const HEADER_MAC_SIZE = 32;

export function generateFileKey(): Buffer {
  return randomBytes(FILE_KEY_SIZE);
}

function derive(fileKey: Uint8Array, label: string): Buffer {
  if (fileKey.length !== FILE_KEY_SIZE) fail("E_KEY", "file key must be 32 bytes");
  return hkdfExpand("sha512", fileKey, Buffer.from(label, "ascii"), 32);
}

export function headerMacKey(fileKey: Uint8Array): Buffer {
  return derive(fileKey, "tensorseal.dev/v1 header-mac");
}

export function payloadInputKey(fileKey: Uint8Array): Buffer {
  return derive(fileKey, "tensorseal.dev/v1 payload");
}

export function computeHeaderMac(fileKey: Uint8Array, authenticated: readonly Buffer[]): Buffer {
  const key = headerMacKey(fileKey);
  try {
    return hmac("sha256", key, ...authenticated);
  } finally {
    key.fill(0);
  }
}

export function checkHeaderMac(
  fileKey: Uint8Array,
  authenticated: readonly Buffer[],
  stored: Buffer,
): void {
  const mac = computeHeaderMac(fileKey, authenticated);
  if (stored.length !== HEADER_MAC_SIZE || !constantTimeEqual(mac, stored)) {
    fail(
      "E_HEADER_MAC",
      "header MAC mismatch: the header was modified or a stanza was copied from another file",
    );
  }
}
