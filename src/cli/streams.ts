/** `-` means stdin or stdout; other paths become file streams (outputs written atomically by the engine for files). */
import { createReadStream, createWriteStream } from "node:fs";
import type { Readable, Writable } from "node:stream";

export function openInput(path: string): Readable {
  return path === "-" ? process.stdin : createReadStream(path);
}

export async function openOutput(path: string): Promise<Writable> {
  if (path === "-") return process.stdout;
  return createWriteStream(path, { mode: 0o600 });
}
