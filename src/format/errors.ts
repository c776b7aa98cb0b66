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
  | "E_CONTEXT" // the encryption context lacks an expected entry or holds another value
  | "E_DECRYPT" // a chunk failed authentication (tampered, reordered, spliced)
  | "E_NOT_ENCRYPTED" // a public (integrity-only) file where the caller requires encryption
  | "E_TRUNCATED" // ciphertext ends before the final chunk
  | "E_TRAILING" // data after the final chunk
  | "E_KEY" // a key has the wrong size or type
  | "E_KEYSTORE" // keystore missing, locked, corrupt or the key is unusable
  | "E_KEY_STATE" // a key version exists but its lifecycle state forbids this use (policy)
  | "E_PROVIDER" // an HSM or KMS failed or refused (unreachable, wrong PIN, key missing, denied)
  | "E_SIGNATURE" // a required signer's signature is missing, foreign, or does not cover the files
  | "E_IO"; // file system error

export class TensorSealError extends Error {
  readonly code: ErrorCode;
  /** The sealed file the error is about, once known; the message then starts with it. */
  file: string | undefined;
  /** The message without the file's name (for lists that print the file themselves). */
  detail: string;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TensorSealError";
    this.code = code;
    this.detail = message;
  }
}

/**
 * Codes that say something about a file's own bytes or keys: these name the file. Usage,
 * keystore and I/O errors say what they are about themselves (an output, a flag, the keystore).
 */
const ABOUT_THE_FILE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "E_NOT_TSEAL",
  "E_UNSUPPORTED",
  "E_MALFORMED",
  "E_NO_IDENTITY",
  "E_HEADER_MAC",
  "E_COMMITMENT",
  "E_CONTEXT",
  "E_DECRYPT",
  "E_NOT_ENCRYPTED",
  "E_TRUNCATED",
  "E_TRAILING",
  "E_KEY",
  "E_KEY_STATE",
  "E_PROVIDER",
]);

/**
 * Runs `fn` on the sealed file `file`; an error about that file's contents leaves it naming the
 * file (`file` and the message's start). The innermost file wins, as in the Python package.
 */
export async function namingFile<T>(file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof TensorSealError && e.file === undefined && ABOUT_THE_FILE.has(e.code)) {
      e.file = file;
      e.message = `${file}: ${e.detail}`;
    }
    throw e;
  }
}

export function fail(code: ErrorCode, message: string, cause?: unknown): never {
  throw new TensorSealError(code, message, cause === undefined ? undefined : { cause });
}

export function isTensorSealError(e: unknown, code?: ErrorCode): e is TensorSealError {
  return e instanceof TensorSealError && (code === undefined || e.code === code);
}
