/**
 * Turns rewrap flags into one stanza edit: remove what the user named, rewrap kek stanzas under
 * their key's primary version (--to-latest), then add new recipients.
 */
import { fail } from "../format/errors.js";
import type { Recipient, Stanza } from "../format/stanza.js";
import { KEK_STANZA, type Keystore, parseKekStanza, parseRecipient } from "../keys/index.js";

export interface RewrapPlan {
  add: Recipient[];
  remove: string[];
  keystore: Keystore | null;
}

export async function planRewrap(plan: RewrapPlan) {
  const removers = plan.remove.map((r) => stanzaMatcher(r, plan.keystore));
  return async (stanzas: readonly Stanza[], fileKey: Buffer): Promise<Stanza[]> => {
    let out = stanzas.filter((s) => !removers.some((m) => m(s)));
    if (plan.keystore) {
      const ks = plan.keystore;
      const known = new Set(ks.listKeys().map((k) => k.name));
      out = await Promise.all(
        out.map(async (s) => {
          if (s.type !== KEK_STANZA) return s;
          const { name, version } = parseKekStanza(s);
          // Keys of other keystores are left alone: only their owner can rewrap them.
          if (!known.has(name) || version === ks.primaryVersion(name)) return s;
          return ks.recipient(name).wrap(fileKey);
        }),
      );
    }
    for (const r of plan.add) {
      if (!out.some((s) => r.matches(s))) out.push(await r.wrap(fileKey));
    }
    if (out.length === 0)
      fail("E_USAGE", "refusing to remove every recipient: the file could never be opened again");
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
