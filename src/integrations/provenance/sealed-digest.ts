/**
 * The sealed digest of a .tseal file: SHA-256 over its prefix, descriptor, payload salt and key
 * commitment (spec/FORMAT.md §2.1, §2.2, §4.2). These bytes fix the payload's key (the
 * commitment commits to it), its encryption context (path and model id) and its length, yet
 * `rewrap` and key rotation never change them (they rewrite only the header slots), so a
 * signature survives a rotation. Computed without any key.
 */
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { inspectFile } from "../../engine/index.js";
import { fail } from "../../format/errors.js";

/** Salt (24) + commitment (32) at the start of the payload. */
const PAYLOAD_IDENTITY = 56;

export async function sealedDigest(path: string): Promise<string> {
  const h = await inspectFile(path);
  const fh = await open(path, "r");
  try {
    const id = Buffer.alloc(PAYLOAD_IDENTITY);
    const { bytesRead } = await fh.read(id, 0, PAYLOAD_IDENTITY, h.headerLength);
    if (bytesRead !== PAYLOAD_IDENTITY)
      fail("E_TRUNCATED", `${path}: file ends before its payload salt and commitment`);
    return createHash("sha256")
      .update(h.prefixBytes)
      .update(h.descriptorBytes)
      .update(id)
      .digest("hex");
  } finally {
    await fh.close();
  }
}
