/**
 * Rewrap in place: only the header's slots change, never the payload. Crash safety comes from
 * ordering: the new slot (generation + 1) is written into the inactive position and synced
 * before the old active slot is zeroed and synced. At every instant one intact slot exists; a
 * torn write fails its checksum and is ignored, and two intact slots resolve to the higher
 * generation. Zeroing the old slot means the file no longer carries the removed stanzas.
 *
 * Limit (inherent to rewrapping without re-encrypting): a removed recipient already knew the
 * file key, and anyone who kept a byte copy of the pre-rewrap header can put it back (the
 * payload is unchanged), which recreates a genuine old file. Revoking access to data someone
 * already copied needs a re-seal under a new file key; rewrap only controls what the current
 * file grants. Concurrent rewraps of one file are not serialised here: callers must not race.
 */
import { open } from "node:fs/promises";
import { fail, namingFile } from "../format/errors.js";
import { encodeSlot, slotOffset } from "../format/header.js";
import type { Identity, Recipient, Stanza } from "../format/stanza.js";
import { unlockFileKey } from "../format/unlock.js";
import { io, writeAll } from "./fsutil.js";
import { readFileHeader } from "./sealed-header.js";

export type StanzaEdit = (stanzas: readonly Stanza[], fileKey: Buffer) => Promise<Stanza[]>;

export interface RewrapOptions {
  readonly identities: readonly Identity[];
  readonly edit: StanzaEdit;
}

export interface RewrapResult {
  readonly generation: number;
  readonly stanzas: readonly Stanza[];
}

/** Errors about the file's contents name `path` (format/errors.ts, namingFile). */
export function rewrapFile(path: string, opts: RewrapOptions): Promise<RewrapResult> {
  return namingFile(path, () => rewrapInPlace(path, opts));
}

async function rewrapInPlace(path: string, opts: RewrapOptions): Promise<RewrapResult> {
  const fh = await io(`open ${path} for update`, () => open(path, "r+"));
  try {
    const { size } = await io(`stat ${path}`, () => fh.stat());
    const header = await readFileHeader(fh, size);
    const fileKey = await unlockFileKey(header, opts.identities);
    try {
      const stanzas = await opts.edit(header.stanzas, fileKey);
      if (stanzas.length === 0) fail("E_USAGE", "a file needs at least one recipient");
      const generation = header.generation + 1;
      const slot = encodeSlot(
        fileKey,
        header.prefixBytes,
        header.descriptorBytes,
        { generation, stanzas },
        header.slotCapacity,
      );
      const inactive = header.activeSlot === 0 ? 1 : 0;
      // Overwrites a stale older slot left by an interrupted rewrap, if there is one.
      await io(`write the new header slot of ${path}`, async () => {
        await writeAll(fh, slot, slotOffset(header, inactive));
        await fh.sync();
      });
      await io(`clear the old header slot of ${path}`, async () => {
        await writeAll(
          fh,
          Buffer.alloc(header.slotCapacity),
          slotOffset(header, header.activeSlot),
        );
        await fh.sync();
      });
      return { generation, stanzas };
    } finally {
      fileKey.fill(0);
    }
  } finally {
    await fh.close().catch(() => {});
  }
}

/**
 * Adds recipients. A recipient that already has a stanza (`matches`) gets it replaced, so adding
 * a new version of the same key rotates it rather than duplicating it.
 */
export function addRecipients(recipients: readonly Recipient[]): StanzaEdit {
  return async (stanzas, fileKey) => {
    const kept = stanzas.filter((s) => !recipients.some((r) => r.matches(s)));
    const added = await Promise.all(recipients.map((r) => r.wrap(fileKey)));
    return [...kept, ...added];
  };
}

/** Removes the stanzas `pred` selects; refuses to remove none, or all of them. */
export function removeRecipients(pred: (stanza: Stanza) => boolean): StanzaEdit {
  return async (stanzas) => {
    const kept = stanzas.filter((s) => !pred(s));
    if (kept.length === stanzas.length) fail("E_USAGE", "no recipient stanza matched the removal");
    if (kept.length === 0) {
      fail("E_USAGE", "removing these recipients would leave the file with none: refused");
    }
    return kept;
  };
}
