/**
 * One-line notices the library gives about the user's files (stale temporaries it removed).
 * They go to stderr unless the host takes them; never a key, passphrase or plaintext byte.
 */
type NoticeHandler = (message: string) => void;

let handler: NoticeHandler = (message) => process.stderr.write(`tensorseal: ${message}\n`);

export function notice(message: string): void {
  handler(message);
}

/**
 * Control and format characters escaped (`\u001b`), so a file name or a name read from a file
 * cannot drive the terminal when it is printed.
 */
export function printable(s: string): string {
  return s.replace(
    /[\p{Cc}\p{Cf}]/gu,
    (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, "0")}`,
  );
}

/** Sends notices to `fn` instead of stderr (an application with its own logging). */
export function onNotice(fn: NoticeHandler): void {
  handler = fn;
}
