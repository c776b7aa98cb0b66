/** Recognises artifact formats so `seal` can record a content type in the descriptor. */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

export const SAFETENSORS = "application/vnd.safetensors";
export const OCTET_STREAM = "application/octet-stream";

/** safetensors: u64 little-endian header length N, then N bytes of JSON starting with '{'. */
export function looksLikeSafetensors(head: Buffer, fileSize: number): boolean {
  if (head.length < 9) return false;
  const n = head.readBigUInt64LE(0);
  return n > 1n && n <= BigInt(Math.max(0, fileSize - 8)) && head[8] === 0x7b;
}

export async function detectContentType(path: string): Promise<string> {
  // Synchronous: three calls on the first bytes, cheaper than the thread pool (issue 11).
  const fd = openSync(path, "r");
  try {
    const { size } = fstatSync(fd);
    const head = Buffer.alloc(9);
    const bytesRead = readSync(fd, head, 0, 9, 0);
    return looksLikeSafetensors(head.subarray(0, bytesRead), size) ? SAFETENSORS : OCTET_STREAM;
  } finally {
    closeSync(fd);
  }
}
