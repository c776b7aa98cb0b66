/**
 * Turns rewrap flags into one stanza edit, built from the engine's edits: remove what the user
 * named, rewrap kek (and key service) stanzas under their key's primary version (--to-latest),
 * then add recipients (an added recipient replaces its own older stanza). Removing every
 * stanza is refused unless recipients are added in the same rewrite.
 *
 * Which key versions may unlock the file key follows from the flags (`rewrapPurpose`): adding a
 * recipient releases the file key to a new holder, which is a decryption, so `open`'s version
 * rules apply; only a rewrap that adds nobody (--to-latest, with or without removals) may read
 * a version below min_decryption_version, because the key only moves to its own newer version.
 */
import { addRecipients, removeRecipients, type StanzaEdit } from "../engine/index.js";
import type { Recipient, Stanza } from "../format/stanza.js";
import {
  KEK_STANZA,
  type Keystore,
  parseKekStanza,
  parseRecipient,
  type ServiceToLatest,
  toLatestEdit,
  type UsePurpose,
} from "../keys/index.js";

export interface RewrapPlan {
  add: Recipient[];
  remove: string[];
  /** Set for --to-latest: its keys' stanzas move to their primary versions. */
  keystore: Keystore | null;
  /** With --to-latest: the key service whose stanzas move to their primary versions. */
  service?: ServiceToLatest | null;
}

export function planRewrap(plan: RewrapPlan): StanzaEdit {
  const edits: StanzaEdit[] = [];
  if (plan.remove.length > 0) {
    const matchers = plan.remove.map((r) => stanzaMatcher(r, plan.keystore));
    const named = (s: Stanza) => matchers.some((m) => m(s));
    // With recipients to add the file cannot end up with none: removing its only stanza is
    // then a replacement, done in one header rewrite.
    edits.push(
      plan.add.length > 0
        ? async (stanzas) => stanzas.filter((s) => !named(s))
        : removeRecipients(named),
    );
  }
  if (plan.keystore) edits.push(toLatestEdit(plan.keystore, plan.service ?? null));
  if (plan.add.length > 0) edits.push(addRecipients(plan.add));
  return async (stanzas, fileKey) => {
    let out = [...stanzas];
    for (const edit of edits) out = await edit(out, fileKey);
    return out;
  };
}

/** "rewrap" (below-minimum versions may be read) only when no recipient is added. */
export function rewrapPurpose(o: { addRecipient?: unknown; toLatest?: unknown }): UsePurpose {
  return o.toLatest && !o.addRecipient ? "rewrap" : "decrypt";
}

function stanzaMatcher(r: string, keystore: Keystore | null): (s: Stanza) => boolean {
  if (r === "passphrase") return (s) => s.type === "passphrase";
  if (r.startsWith("kek:")) {
    const name = r.slice(4);
    return (s) => s.type === KEK_STANZA && parseKekStanza(s).name === name;
  }
  const recipient = parseRecipient(r, keystore ?? undefined);
  return (s) => recipient.matches(s);
}
