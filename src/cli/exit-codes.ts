/** The one place error codes become process exit codes (documented in docs/CLI.md). */
import type { ErrorCode } from "../format/errors.js";

export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  format: 3,
  noKey: 4,
  authentication: 5,
  keystore: 6,
  io: 7,
  provider: 8,
  keyState: 9,
  /** `verify`: every file is authentic, but one still carries a leftover header slot. */
  leftoverSlot: 10,
  /** stdout was closed by its reader (`| head`): 128 + SIGPIPE, as a shell tool killed by it. */
  brokenPipe: 141,
} as const;

const BY_CODE: Record<ErrorCode, number> = {
  E_USAGE: EXIT.usage,
  E_NOT_TSEAL: EXIT.format,
  E_UNSUPPORTED: EXIT.format,
  E_MALFORMED: EXIT.format,
  E_NO_IDENTITY: EXIT.noKey,
  E_KEY: EXIT.noKey,
  E_HEADER_MAC: EXIT.authentication,
  E_COMMITMENT: EXIT.authentication,
  // Not usage: the file is genuine but not the one expected (another tenant's, a swapped file).
  E_CONTEXT: EXIT.authentication,
  E_DECRYPT: EXIT.authentication,
  // A public file where encryption was required (a downgrade attempt or a wrong file).
  E_NOT_ENCRYPTED: EXIT.authentication,
  E_TRUNCATED: EXIT.authentication,
  E_TRAILING: EXIT.authentication,
  E_SIGNATURE: EXIT.authentication,
  E_KEYSTORE: EXIT.keystore,
  E_IO: EXIT.io,
  E_KEY_STATE: EXIT.keyState,
  E_PROVIDER: EXIT.provider,
};

export function exitCodeFor(code: ErrorCode): number {
  return BY_CODE[code] ?? EXIT.internal;
}
