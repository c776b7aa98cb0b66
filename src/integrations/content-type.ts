/** Recognises artifact formats so `seal` can record a content type in the descriptor. */
import { open } from "node:fs/promises";

export const SAFETENSORS = "application/vnd.safetensors";
export const OCTET_STREAM = "application/octet-stream";

/** safetensors: u64 little-endian header length N, then N bytes of JSON starting with '{'. */
export function looksLikeSafetensors(head: Buffer, fileSize: number): boolean {
  if (head.length < 9) return false;
  const n = head.readBigUInt64LE(0);
  return n > 1n && n <= BigInt(Math.max(0, fileSize - 8)) && head[8] === 0x7b;
}

export async function detectContentType(path: string): Promise<string> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(9);
    const { bytesRead } = await fh.read(head, 0, 9, 0);
    return looksLikeSafetensors(head.subarray(0, bytesRead), size) ? SAFETENSORS : OCTET_STREAM;
  } finally {
    await fh.close();
  }
}
