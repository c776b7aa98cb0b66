/**
 * One error class for the whole library. `code` is stable and maps to a CLI exit code in one
 * place (cli/exit-codes.ts). Messages say what failed and what to do; they never contain key
 * material, passphrases or plaintext.
 */
export type ErrorCode =
  | "E_USAGE" // bad arguments or options
  | "E_NOT_TSEAL" // input does not start with the .tseal magic
  | "E_UNSUPPORTED" // a version, suite or parameter this reader does not implement
  | "E_MALFORMED" // header bytes violate the spec (lengths, encoding, limits)
  | "E_NO_IDENTITY" // no stanza could be unwrapped by the identities given
  | "E_HEADER_MAC" // the header was modified, or a stanza came from another file
  | "E_COMMITMENT" // key commitment mismatch: wrong key or context
  | "E_DECRYPT" // a chunk failed authentication (tampered, reordered, spliced)
  | "E_TRUNCATED" // ciphertext ends before the final chunk
  | "E_TRAILING" // data after the final chunk
  | "E_KEY" // a key has the wrong size or type
  | "E_KEYSTORE" // keystore missing, locked, corrupt or the key is unusable
  | "E_KEY_STATE" // a key version exists but its lifecycle state forbids this use (policy)
  | "E_PROVIDER" // an HSM or KMS failed or refused (unreachable, wrong PIN, key missing, denied)
  | "E_IO"; // file system error

export class TensorSealError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TensorSealError";
    this.code = code;
  }
}

export function fail(code: ErrorCode, message: string, cause?: unknown): never {
  throw new TensorSealError(code, message, cause === undefined ? undefined : { cause });
}

export function isTensorSealError(e: unknown, code?: ErrorCode): e is TensorSealError {
  return e instanceof TensorSealError && (code === undefined || e.code === code);
}
