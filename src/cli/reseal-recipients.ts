/**
 * Who a resealed file is sealed to. With -r/-k the list is exactly what they name (as for
 * `seal`). Without them it is the file's own recipients, each stanza re-created for the same
 * holder under the new file key:
 *   kek       the keystore key of that name, at its primary version
 *   kms       the same HSM/KMS key (provider and key reference from the stanza)
 *   service   the same key of the configured key service (which must be the stanza's server)
 *   passphrase  the passphrase given for this run (-p, --passphrase-file, TENSORSEAL_PASSPHRASE)
 *   x25519    a public key whose tag the stanza carries: from --known-recipient, or the public
 *             half of an -i identity (a stanza names only a hash of its key)
 * A stanza none of these resolves fails the file (nothing is written): a reseal never drops a
 * recipient silently.
 */
import { fail } from "../format/errors.js";
import type { ParsedHeader } from "../format/header.js";
import { printable } from "../format/printable.js";
import type { Identity, Recipient, Stanza } from "../format/stanza.js";
import {
  KEK_STANZA,
  KMS_STANZA,
  PASSPHRASE_STANZA,
  parseKekStanza,
  parseKmsStanza,
  parseProviderRecipient,
  parseRecipient,
  parseServiceStanza,
  passphraseRecipient,
  SERVICE_STANZA,
  serviceRecipient,
  X25519_STANZA,
} from "../keys/index.js";
import { X25519_RECIPIENT_HRP } from "../keys/x25519.js";
import { configuredService, openKeystore, workFactor } from "./keys-context.js";

export interface SameRecipientsOptions {
  /** tseal1... strings (--known-recipient) and the -i identities' public keys. */
  readonly known: readonly string[];
  readonly identities: readonly Identity[];
  /** The file passphrase for this run, read once. */
  readonly passphrase: () => Promise<string>;
}

/** A resolver that keeps each file's own recipients (one new stanza per old one). */
export function sameRecipients(
  o: SameRecipientsOptions,
): (header: ParsedHeader) => Promise<Recipient[]> {
  const x25519 = [
    ...o.known.map((r) => parseRecipient(r)),
    ...o.identities
      .filter((i) => i.id.toLowerCase().startsWith(`${X25519_RECIPIENT_HRP}1`))
      .map((i) => parseRecipient(i.id)),
  ];
  return async (header) => {
    const out: Recipient[] = [];
    for (const s of header.stanzas) {
      const r = await recipientOf(s, x25519, o);
      // Two stanzas for one holder (a passphrase twice) need one new stanza.
      if (!out.some((x) => x.id === r.id)) out.push(r);
    }
    return out;
  };
}

async function recipientOf(
  s: Stanza,
  x25519: readonly Recipient[],
  o: SameRecipientsOptions,
): Promise<Recipient> {
  switch (s.type) {
    case KEK_STANZA:
      return (await openKeystore()).recipient(parseKekStanza(s).name);
    case KMS_STANZA: {
      const k = parseKmsStanza(s);
      const r = parseProviderRecipient(`${k.provider}:${k.keyRef}`);
      return r ?? fail("E_USAGE", `kms stanza of unknown provider ${printable(k.provider)}`);
    }
    case SERVICE_STANZA: {
      const p = parseServiceStanza(s);
      const client = await configuredService();
      if (!client || (await client.id()) !== p.serverId)
        fail(
          "E_USAGE",
          `its service stanza (key ${printable(p.name)} of server ${printable(p.serverId)}) can be kept only with that key service: pass --server URL or set TENSORSEAL_SERVER`,
        );
      return serviceRecipient(client, p.name);
    }
    case PASSPHRASE_STANZA:
      return passphraseRecipient(await o.passphrase(), workFactor());
    case X25519_STANZA: {
      const r = x25519.find((c) => c.matches(s));
      if (r) return r;
      return fail(
        "E_USAGE",
        `it is sealed to an x25519 public key not given: pass it with --known-recipient tseal1... (or its identity with -i), or name every new recipient with -r`,
      );
    }
    default:
      return fail(
        "E_USAGE",
        `its ${printable(s.type)} stanza cannot be re-created: name every new recipient with -r`,
      );
  }
}
