/**
 * One-line notices the library gives about the user's files (stale temporaries it removed).
 * They go to stderr unless the host takes them; never a key, passphrase or plaintext byte.
 */
import { printable } from "../format/printable.js";

type NoticeHandler = (message: string) => void;

/** Notices name paths: escaped, so a file name cannot drive the terminal. */
let handler: NoticeHandler = (message) =>
  process.stderr.write(`tensorseal: ${printable(message)}\n`);

export function notice(message: string): void {
  handler(message);
}

/** Sends notices to `fn` instead of stderr (an application with its own logging). */
export function onNotice(fn: NoticeHandler): void {
  handler = fn;
}
