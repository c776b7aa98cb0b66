/**
 * Bech32 (BIP 173, not bech32m) for key strings, as age does. Errors never echo the input: an
 * identity string is a secret, and @scure/base's own messages quote it.
 */
import { bech32 } from "@scure/base";
import { fail } from "../format/errors.js";

export function encodeBech32(hrp: string, data: Uint8Array): string {
  return bech32.encode(hrp, bech32.toWords(data), false);
}

/** Encodes a key after checking its size: `what` names it in the error ("X25519 public key"). */
export function encodeBech32Key(hrp: string, key: Uint8Array, size: number, what: string): string {
  if (key.length !== size) fail("E_KEY", `${what} must be ${size} bytes`);
  return encodeBech32(hrp, key);
}

/** Decodes `s` (all lower or all upper case) and checks the HRP and the payload length. */
export function decodeBech32(s: string, hrp: string, size: number, what: string): Buffer {
  let prefix: string;
  let bytes: Uint8Array;
  try {
    const d = bech32.decode(s, false);
    prefix = d.prefix;
    bytes = bech32.fromWords(d.words);
  } catch {
    return fail("E_KEY", `${what} is not valid bech32 (a typo, or a truncated copy)`);
  }
  if (prefix !== hrp) {
    fail("E_KEY", `${what} must start with ${JSON.stringify(`${hrp}1`)}`);
  }
  if (bytes.length !== size) {
    fail("E_KEY", `${what} encodes ${bytes.length} bytes, expected ${size}`);
  }
  return Buffer.from(bytes);
}
