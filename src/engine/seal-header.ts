/**
 * The header of a new sealed file: a fresh file key (drawn by a KMS recipient where one comes
 * first), wrapped for every recipient, encoded with the descriptor. Shared by files and streams.
 */

import { SALT_SIZE } from "../format/chunked.js";
import { fail } from "../format/errors.js";
import { generateFileKey, payloadInputKey } from "../format/filekey.js";
import { DEFAULT_SLOT_CAPACITY, encodeHeader } from "../format/header.js";
import { randomBytes } from "../format/primitives.js";
import type { Recipient } from "../format/stanza.js";
import type { SealOptions } from "./options.js";

/** The first recipient that can draw the file key (a KMS) does; the others then wrap it. */
async function drawFileKey(recipients: readonly Recipient[]) {
  for (const by of recipients) {
    const drawn = by.generate ? await by.generate() : null;
    if (drawn) {
      if (drawn.fileKey.length !== 32)
        fail("E_KEY", `${by.id} generated a file key of the wrong size`);
      return { ...drawn, by };
    }
  }
  return null;
}

/**
 * Wraps a fresh file key for every recipient, encodes the header and returns the payload input
 * key (the caller derives the chunk keys from it and wipes it); the file key is wiped here.
 */
export async function prepareHeader(
  opts: Pick<SealOptions, "recipients" | "slotCapacity" | "fileKey" | "salt">,
  descriptorBytes: Buffer,
): Promise<{ header: Buffer; inputKey: Buffer; salt: Buffer }> {
  if (opts.recipients.length === 0) fail("E_USAGE", "sealing needs at least one recipient");
  const drawn = opts.fileKey ? null : await drawFileKey(opts.recipients);
  const fileKey = drawn?.fileKey ?? (opts.fileKey ? Buffer.from(opts.fileKey) : generateFileKey());
  try {
    const stanzas = await Promise.all(
      opts.recipients.map((r) => (r === drawn?.by ? drawn.stanza : r.wrap(fileKey))),
    );
    const header = encodeHeader(
      fileKey,
      descriptorBytes,
      stanzas,
      opts.slotCapacity ?? DEFAULT_SLOT_CAPACITY,
    );
    const salt = opts.salt ? Buffer.from(opts.salt) : randomBytes(SALT_SIZE);
    return { header, inputKey: payloadInputKey(fileKey), salt };
  } finally {
    fileKey.fill(0);
  }
}
