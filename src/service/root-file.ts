/** The service root key from a file (64 hex characters or 32 raw bytes), or a new dev one. */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { fail } from "../format/errors.js";

export async function readServiceRootKey(path: string): Promise<Buffer> {
  const b = await readFile(path).catch(() =>
    fail("E_KEYSTORE", `cannot read the service root key file ${path}`),
  );
  const text = b.toString("latin1").trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, "hex");
  if (b.length === 32) return b;
  return fail("E_KEYSTORE", `${path} must hold 32 bytes or 64 hex characters`);
}

/** `--dev` only: creates the root key file (mode 0600) on first use. */
export async function devRootKey(path: string): Promise<Buffer> {
  if (!existsSync(path)) {
    await writeFile(path, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
    await chmod(path, 0o600);
  }
  return readServiceRootKey(path);
}
