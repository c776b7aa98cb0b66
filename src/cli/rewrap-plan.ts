/**
 * Turns rewrap flags into one stanza edit, built from the engine's edits: remove what the user
 * named, rewrap kek stanzas under their key's primary version (--to-latest), then add
 * recipients (an added recipient replaces its own older stanza).
 */
import { addRecipients, removeRecipients, type StanzaEdit } from "../engine/index.js";
import type { Recipient, Stanza } from "../format/stanza.js";
import { KEK_STANZA, type Keystore, parseKekStanza, parseRecipient } from "../keys/index.js";

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
  if (plan.keystore) edits.push(toLatest(plan.keystore));
  if (plan.add.length > 0) edits.push(addRecipients(plan.add));
  return async (stanzas, fileKey) => {
    let out = [...stanzas];
    for (const edit of edits) out = await edit(out, fileKey);
    return out;
  };
}

/** Rewraps kek stanzas of this keystore's keys that are not under the primary version. */
function toLatest(ks: Keystore): StanzaEdit {
  const known = new Set(ks.listKeys().map((k) => k.name));
  return (stanzas, fileKey) =>
    Promise.all(
      stanzas.map(async (s) => {
        if (s.type !== KEK_STANZA) return s;
        const { name, version } = parseKekStanza(s);
        // Keys of other keystores are left alone: only their owner can rewrap them.
        if (!known.has(name) || version === ks.primaryVersion(name)) return s;
        return ks.recipient(name).wrap(fileKey);
      }),
    );
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
