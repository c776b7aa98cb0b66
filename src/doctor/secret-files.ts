/**
 * Recognising secret files by their content, not their name: an identity file (a
 * TSEAL-SECRET-KEY-1 line), a root key share (the `tensorseal-root-share/v1` header line) or a
 * keystore (JSON with "format": "tensorseal-keystore"). Root key files (32 raw bytes or 64 hex
 * digits) look like any random file, so only the configured ones are checked (check-permissions).
 */
import { constants } from "node:fs";
import { open } from "node:fs/promises";

export type SecretKind = "identity" | "share" | "keystore";

/** Secret files are small; the first 64 KiB decide. */
const HEAD_BYTES = 64 * 1024;

export async function secretKind(path: string): Promise<SecretKind | null> {
  let text: string;
  try {
    // Never follow a link or block on a FIFO swapped in since the walk listed the entry.
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      if (!(await fh.stat()).isFile()) return null;
      const buf = Buffer.alloc(HEAD_BYTES);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      text = buf.subarray(0, bytesRead).toString("latin1");
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  if (lines.some((l) => l.toUpperCase().startsWith("TSEAL-SECRET-KEY-1"))) return "identity";
  if (lines.some((l) => l.startsWith("tensorseal-root-share/v1 "))) return "share";
  if (/"format"\s*:\s*"tensorseal-keystore"/.test(text)) return "keystore";
  return null;
}
