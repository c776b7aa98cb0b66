/**
 * Turns rewrap flags into one stanza edit, built from the engine's edits: remove what the user
 * named, rewrap kek stanzas under their key's primary version (--to-latest), then add
 * recipients (an added recipient replaces its own older stanza).
 */
import { addRecipients, removeRecipients, type StanzaEdit } from "../engine/index.js";
import type { Recipient, Stanza } from "../format/stanza.js";
import {
  KEK_STANZA,
  type Keystore,
  parseKekStanza,
  parseRecipient,
  toLatestEdit,
} from "../keys/index.js";

export interface RewrapPlan {
  add: Recipient[];
  remove: string[];
  keystore: Keystore | null;
}

export function planRewrap(plan: RewrapPlan): StanzaEdit {
  const edits: StanzaEdit[] = [];
  if (plan.remove.length > 0) {
    const matchers = plan.remove.map((r) => stanzaMatcher(r, plan.keystore));
    edits.push(removeRecipients((s) => matchers.some((m) => m(s))));
  }
  if (plan.keystore) edits.push(toLatestEdit(plan.keystore));
  if (plan.add.length > 0) edits.push(addRecipients(plan.add));
  return async (stanzas, fileKey) => {
    let out = [...stanzas];
    for (const edit of edits) out = await edit(out, fileKey);
    return out;
  };
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
