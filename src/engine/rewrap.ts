/**
 * Rewrap in place: only the header's slots change, never the payload. Crash safety comes from
 * ordering: the new slot (generation + 1) is written into the inactive position and synced
 * before the old active slot is zeroed and synced. At every instant one intact slot exists; a
 * torn write fails its checksum and is ignored, and two intact slots resolve to the higher
 * generation. Zeroing the old slot means the file no longer carries the removed stanzas.
 *
 * A crash between the two writes leaves the old slot behind (stale, or damaged if the zeroing
 * tore). Such a leftover still holds the old recipient list, and damaging the newer slot would
 * make readers fall back to it, so every rewrap clears it first, once the active slot's MAC has
 * been verified (never destroy the only authentic slot on the word of a forged one), even when
 * the edit then finds nothing to change. SIGINT/SIGTERM cannot split the two writes (they are
 * one critical section); SIGKILL can, and the next rewrap of the file clears what it left.
 *
 * Limit (inherent to rewrapping without re-encrypting): a removed recipient already knew the
 * file key, and anyone who kept a byte copy of the pre-rewrap header can put it back (the
 * payload is unchanged), which recreates a genuine old file. Revoking access to data someone
 * already copied needs a re-seal under a new file key; rewrap only controls what the current
 * file grants. Concurrent rewraps of one file are not serialised here: callers must not race.
 */
import { open } from "node:fs/promises";
import { fail, namingFile } from "../format/errors.js";
import { encodeSlot, encodeSlotBody, slotOffset } from "../format/header.js";
import { printable } from "../format/printable.js";
import { refuseRecipientChange } from "../format/public.js";
import type { Identity, Recipient, Stanza } from "../format/stanza.js";
import { unlockFileKey } from "../format/unlock.js";
import { io, writeAll } from "./fsutil.js";
import { uninterruptible } from "./interrupt.js";
import { notice } from "./notices.js";
import { readFileHeader } from "./sealed-header.js";

/** Returns the new stanza list; returning the same stanzas (byte for byte) writes no new slot. */
export type StanzaEdit = (stanzas: readonly Stanza[], fileKey: Buffer) => Promise<Stanza[]>;

/**
 * Told that the file's stanzas move from `from` to `to` (the key service's registry follows
 * its stanzas: keys/service/registry.ts). Called after the new slot is synced and before the
 * old one is zeroed; a throw zeroes the new slot again, so the file is as it was. Also called
 * with a leftover slot's stanzas (`from`) and the active ones (`to`) before the leftover is
 * cleared: an interrupted rewrap's leftover is the record of a move the registry may not know.
 */
export type RewrapRegistry = (
  from: readonly Stanza[],
  to: readonly Stanza[],
  /** "commit": a refusal restores the old header; "leftover": a refusal keeps the leftover. */
  phase: "commit" | "leftover",
) => Promise<void>;

export interface RewrapOptions {
  readonly identities: readonly Identity[];
  readonly edit: StanzaEdit;
  readonly registry?: RewrapRegistry;
}

export interface RewrapResult {
  readonly generation: number;
  readonly stanzas: readonly Stanza[];
  /** False when the edit changed nothing: no new slot was written, the generation is the same. */
  readonly changed: boolean;
  /** What the inactive slot held and this rewrap zeroed: a stale or damaged leftover, or null. */
  readonly cleared: "stale" | "damaged" | null;
}

/** Errors about the file's contents name `path` (format/errors.ts, namingFile). */
export function rewrapFile(path: string, opts: RewrapOptions): Promise<RewrapResult> {
  return namingFile(path, () => rewrapInPlace(path, opts));
}

async function rewrapInPlace(path: string, opts: RewrapOptions): Promise<RewrapResult> {
  const fh = await io(`open ${path} for update`, () => open(path, "r+"));
  try {
    const { size } = await io(`stat ${path}`, () => fh.stat());
    const header = await readFileHeader(fh.fd, size);
    refuseRecipientChange(header.descriptor.suite, "rewrap");
    const fileKey = await unlockFileKey(header, opts.identities);
    try {
      const inactive = header.activeSlot === 0 ? 1 : 0;
      const leftover = header.inactiveSlot;
      const cleared = leftover.kind === "empty" ? null : leftover.kind;
      const zeros = Buffer.alloc(header.slotCapacity);
      if (leftover.kind === "stale")
        await opts.registry?.(leftover.stanzas, header.stanzas, "leftover");
      if (cleared) {
        await io(`clear the leftover header slot of ${path}`, async () => {
          await writeAll(fh.fd, zeros, slotOffset(header, inactive));
          await fh.sync();
        });
        notice(
          `${printable(path)}: cleared a ${cleared} header slot left by an interrupted rewrap (it held an older recipient list)`,
        );
      }
      const stanzas = await opts.edit(header.stanzas, fileKey);
      if (stanzas.length === 0) fail("E_USAGE", "a file needs at least one recipient");
      if (sameStanzas(header.stanzas, stanzas)) {
        return { generation: header.generation, stanzas: header.stanzas, changed: false, cleared };
      }
      const generation = header.generation + 1;
      const slot = encodeSlot(
        fileKey,
        header.prefixBytes,
        header.descriptorBytes,
        { generation, stanzas },
        header.slotCapacity,
      );
      // One critical section: SIGINT/SIGTERM wait until the old slot is gone too.
      await uninterruptible(async () => {
        await io(`write the new header slot of ${path}`, async () => {
          await writeAll(fh.fd, slot, slotOffset(header, inactive));
          await fh.sync();
        });
        if (opts.registry) {
          // Both slots are intact here: a refusal zeroes the new one (the old wins again, the
          // file is byte for byte as before); a crash leaves the old one as a leftover, which
          // the next rewrap reports to the registry before clearing it.
          await opts.registry(header.stanzas, stanzas, "commit").catch(async (e) => {
            await io(`restore the header of ${path}`, async () => {
              await writeAll(fh.fd, zeros, slotOffset(header, inactive));
              await fh.sync();
            });
            throw e;
          });
        }
        await io(`clear the old header slot of ${path}`, async () => {
          await writeAll(fh.fd, zeros, slotOffset(header, header.activeSlot));
          await fh.sync();
        });
      });
      return { generation, stanzas, changed: true, cleared };
    } finally {
      fileKey.fill(0);
    }
  } finally {
    await fh.close().catch(() => {});
  }
}

function sameStanzas(a: readonly Stanza[], b: readonly Stanza[]): boolean {
  const body = (stanzas: readonly Stanza[]) => encodeSlotBody({ generation: 1, stanzas });
  return a.length === b.length && body(a).equals(body(b));
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

/**
 * Removes the stanzas `pred` selects; refuses to remove all of them. Removing none leaves the
 * file unchanged, so a removal is idempotent: rerunning one that a crash interrupted after its
 * new slot reached the file succeeds (and clears what the crash left) instead of failing.
 */
export function removeRecipients(pred: (stanza: Stanza) => boolean): StanzaEdit {
  return async (stanzas) => {
    const kept = stanzas.filter((s) => !pred(s));
    if (kept.length === 0) {
      fail("E_USAGE", "removing these recipients would leave the file with none: refused");
    }
    return kept;
  };
}
